"""Siting benchmark: 2,000 candidates, choose up to 20 sites by lazy greedy and by the exact
integer program (HiGHS); prints wall times (gain pre-computation, each selection alone and
with the gains) and the gap.

Instance: by default a synthetic Lai Châu-sized one (5700 x 4300 cells of 30 m fractal DEM,
1,025 villages with 512,601 people, 500 sellers, today's class drawn at random — labelled
synthetic); with ``--registry`` the registry's own demo (``registry.create_app()``: its DEM,
villages, sellers, sites, fibre nodes and computed coverage; run ``flask demo`` first).

Goals (2 cores), gain pre-computation included: greedy + gains <= 10 s, IP + gains <= 120 s.
The gains (`candidate_gains`: path loss at each candidate's unserved demand points within the
radius, one straight profile per point) are computed once and shared by both selections.

Usage::

    python benchmarks/siting.py [--registry] [--candidates 2000] [--sites 20]
                                [--spacing-km 3] [--workers 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from registry.radio.coverage import CoverageParams  # noqa: E402
from registry.siting import (  # noqa: E402
    DemandPoint,
    Hub,
    candidate_gains,
    generate_candidates,
    greedy_select,
    ip_select,
    site_costs,
)
from registry.terrain import Dem, synthetic_dem  # noqa: E402


def synthetic_instance(seed: int = 7) -> dict[str, Any]:
    """A province-sized synthetic instance (clearly synthetic)."""
    rng = np.random.default_rng(seed)
    dem = synthetic_dem((5700, 4300), cell_size_m=30.0, seed=seed, relief_m=2800.0)
    (x0, y1), (x1, y0) = dem.transform @ (0, 0), dem.transform @ dem.shape[::-1]
    area = shapely.box(x0 + 2_000, y0 + 2_000, x1 - 2_000, y1 - 2_000)
    vx, vy = rng.uniform(x0 + 3_000, x1 - 3_000, 1025), rng.uniform(y0 + 3_000, y1 - 3_000, 1025)
    pop = rng.lognormal(0.0, 0.6, 1025)
    pop = np.round(pop / pop.sum() * 512_601)
    classes = rng.choice(
        ["none", "data_only", "basic_live", "sd_live", "hd_live"],
        1025,
        p=[0.1, 0.1, 0.15, 0.15, 0.5],
    )
    demand = [
        DemandPoint(f"V{i}", vx[i], vy[i], population=pop[i], current_class=classes[i])
        for i in range(1025)
    ]
    home = rng.integers(0, 1025, 500)
    demand += [
        DemandPoint(
            f"S{i}",
            vx[v] + rng.normal(0, 300),
            vy[v] + rng.normal(0, 300),
            sellers=1.0,
            current_class=classes[v],
        )
        for i, v in enumerate(home)
    ]
    nodes = [
        Hub(f"N{i}", x, y)
        for i, (x, y) in enumerate(
            zip(rng.uniform(x0, x1, 254), rng.uniform(y0, y1, 254), strict=True)
        )
    ]
    fed = [
        Hub(f"F{i}", x, y)
        for i, (x, y) in enumerate(
            zip(rng.uniform(x0, x1, 300), rng.uniform(y0, y1, 300), strict=True)
        )
    ]
    centres = [
        (f"CC{i}", x, y)
        for i, (x, y) in enumerate(
            zip(
                rng.uniform(x0 + 3_000, x1 - 3_000, 38),
                rng.uniform(y0 + 3_000, y1 - 3_000, 38),
                strict=True,
            )
        )
    ]
    return {
        "name": "synthetic province (5700 x 4300 @ 30 m, labelled synthetic)",
        "dem": dem,
        "area": area,
        "demand": demand,
        "fibre_nodes": nodes,
        "fibre_fed": fed,
        "centres": centres,
        "params": CoverageParams(analysis_step=3),
    }


def registry_instance() -> dict[str, Any]:
    """The registry's demo: DEM, area, demand, fibre nodes, fibre-fed sites, centres."""
    from registry import create_app
    from registry.services.siting import siting_problem

    app = create_app()
    with app.app_context(), app.extensions["registry"]["sessions"]() as session:
        problem = siting_problem(app.config, session)
    return {
        "name": "registry demo",
        "dem": problem.dem,
        "area": problem.area,
        "demand": problem.demand,
        "fibre_nodes": problem.fibre_nodes,
        "fibre_fed": problem.fibre_fed,
        "centres": problem.centres,
        "params": problem.inputs.planning.coverage,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--registry", action="store_true", help="use the registry's demo")
    ap.add_argument("--candidates", type=int, default=2000)
    ap.add_argument("--sites", type=int, default=20)
    ap.add_argument("--candidate-spacing-km", type=float, default=1.0)
    ap.add_argument("--spacing-km", type=float, default=3.0, help="between chosen sites")
    ap.add_argument(
        "--budget-share",
        type=float,
        default=0.8,
        help="budget = this x sites x median candidate cost",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ip-time-limit", type=float, default=120.0)
    a = ap.parse_args(argv)

    t = time.perf_counter()
    inst = registry_instance() if a.registry else synthetic_instance()
    t_load = time.perf_counter() - t
    dem: Dem = inst["dem"]
    t = time.perf_counter()
    cands = generate_candidates(
        dem,
        inst["area"],
        min_spacing_m=a.candidate_spacing_km * 1e3,
        n_max=a.candidates,
        extra_points=inst["centres"],
    )
    t_cand = time.perf_counter() - t
    t = time.perf_counter()
    costs = site_costs(
        dem, cands, fibre_nodes=inst["fibre_nodes"], fibre_fed_sites=inst["fibre_fed"]
    )
    t_cost = time.perf_counter() - t
    t = time.perf_counter()
    m = candidate_gains(
        dem,
        cands,
        inst["demand"],
        params=inst["params"],
        backhaul_capacity_mbps=[c.capacity_mbps for c in costs],
        workers=a.workers,
    )
    t_gain = time.perf_counter() - t
    price = np.array([c.total_cost for c in costs])
    budget = a.budget_share * a.sites * float(np.median(price))
    limits = {
        "costs": price,
        "budget": budget,
        "max_sites": a.sites,
        "min_spacing_m": a.spacing_km * 1e3,
    }
    greedy = greedy_select(m, **limits)
    ip = ip_select(m, **limits, time_limit_s=a.ip_time_limit, threads=a.workers)

    kinds = {k: sum(c.kind == k for c in costs) for k in ("fibre", "microwave", "satellite")}
    nnz = sum(c.size for c in m.covers)
    print(
        f"instance: {inst['name']}; DEM {dem.shape[1]} x {dem.shape[0]}, "
        f"radius {inst['params'].max_radius_m / 1e3:.0f} km, analysis step "
        f"{inst['params'].analysis_step}, {a.workers} workers"
    )
    print(
        f"demand points {len(m.demand)} (unserved below hd_live: "
        f"{sum(d.current_class not in ('hd_live', 'fullhd_live') for d in m.demand)}); "
        f"candidates {len(cands)}; matrix non-zeros {nnz}; backhaul {kinds}"
    )
    print(f"budget {budget:,.0f} M VND, up to {a.sites} sites, {a.spacing_km:g} km apart")
    rows = [
        ("load instance", f"{t_load:8.2f} s", ""),
        ("generate_candidates", f"{t_cand:8.2f} s", ""),
        ("site_costs (backhaul)", f"{t_cost:8.2f} s", ""),
        (
            "candidate_gains (pre-computation)",
            f"{t_gain:8.2f} s",
            f"{t_gain / max(len(cands), 1) * 1e3:.1f} ms/candidate",
        ),
        (
            "greedy_select",
            f"{greedy.wall_s:8.2f} s",
            f"objective {greedy.objective:,.0f}, {len(greedy.chosen)} sites, "
            f"cost {greedy.cost:,.0f}",
        ),
        (
            "ip_select (HiGHS)",
            f"{ip.wall_s:8.2f} s",
            f"objective {ip.objective:,.0f}, {len(ip.chosen)} sites, cost {ip.cost:,.0f}, "
            f"{ip.status}, MIP gap {ip.mip_gap:.2e}, bound {ip.bound:,.0f}",
        ),
        ("greedy + gains", f"{greedy.wall_s + t_gain:8.2f} s", "goal <= 10 s"),
        ("IP + gains", f"{ip.wall_s + t_gain:8.2f} s", "goal <= 120 s"),
        (
            "gap: greedy / IP objective",
            f"{greedy.objective / max(ip.objective, 1e-9):8.4f}",
            f"IP MIP gap {ip.mip_gap:.2e}",
        ),
    ]
    for name, value, detail in rows:
        print(f"{name:36s} | {value:>10s} | {detail}")
    print(
        "IP marginal gains (greedy order): "
        + ", ".join(
            f"{m.candidates[i].code}:{g:,.0f}"
            for i, g in zip(ip.chosen, ip.marginal_gains, strict=True)
        )
    )


if __name__ == "__main__":
    main()
