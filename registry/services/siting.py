"""Siting use case: choose new sites for a budget over the registry and the current coverage.

The problem is built in the DEM's CRS from the readiness inputs (so demand points carry the
class they get today under the same planning parameters as the verdicts); chosen sites are
turned into lon/lat only in the result document (``DATA_DIR/siting/latest.json``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyogrio
import shapely
from sqlalchemy.orm import Session

from registry import siting, terrain
from registry.errors import NotFoundError, ValidationError
from registry.services import queries
from registry.services.coverage import project
from registry.services.imports import roads_file
from registry.services.readiness import ReadinessInputs, load_inputs

Config = Mapping[str, Any]
METHODS = ("ip", "greedy")


@dataclass(frozen=True)
class SitingProblem:
    """The registry's siting problem, all in the DEM's CRS."""

    inputs: ReadinessInputs
    dem: terrain.Dem
    area: Any  # union of the communes (shapely)
    demand: list[siting.DemandPoint]
    fibre_nodes: list[siting.Hub]
    fibre_fed: list[siting.Hub]
    centres: list[tuple[str, float, float]]
    roads: siting.RoadNetwork | None  # fibre routes along the imported OSM roads, if any


def road_routes(
    config: Config, dem: terrain.Dem, fibre_nodes: list[siting.Hub]
) -> siting.RoadNetwork | None:
    """Fibre routes along the roads of the last OSM import (`roads_file`); None without roads
    or fibre nodes (routes are then straight lines x detour factor)."""
    path = roads_file(config)
    if not path.exists() or not fibre_nodes:
        return None
    roads = pyogrio.read_dataframe(path).to_crs(dem.crs)
    return siting.road_network(roads.geometry, fibre_nodes) if len(roads) else None


def siting_problem(config: Config, session: Session) -> SitingProblem:
    """DEM, area, demand points with their current class, fibre nodes, fibre-fed sites and
    commune centres."""
    inputs = load_inputs(config, session)
    to_dem = inputs.to_dem
    fibre_nodes = [
        siting.Hub(n.code, *to_dem.transform(n.geom.x, n.geom.y))
        for n in queries.fibre_nodes(session)
    ]
    demand = [
        siting.DemandPoint(
            v.code,
            *to_dem.transform(v.geom.x, v.geom.y),
            population=float(v.population or 0),
            current_class=inputs.any_class(v.code, v.geom.x, v.geom.y),
        )
        for v in inputs.villages
    ]
    demand += [
        siting.DemandPoint(
            s.code,
            *to_dem.transform(s.geom.x, s.geom.y),
            sellers=1.0,
            current_class=inputs.any_class(s.code, s.geom.x, s.geom.y),
        )
        for s in inputs.sellers
    ]
    return SitingProblem(
        inputs=inputs,
        dem=inputs.dem,
        area=shapely.union_all([project(c.geom, to_dem) for c in inputs.communes]),
        demand=demand,
        fibre_nodes=fibre_nodes,
        fibre_fed=[
            siting.Hub(s.code, s.x_m, s.y_m)
            for s in inputs.sites
            if inputs.backhaul[s.code].kind == "fibre" and inputs.backhaul[s.code].reachable
        ],
        centres=[(c.code, *to_dem.transform(lon, lat)) for c, lon, lat in inputs.centres()],
        roads=road_routes(config, inputs.dem, fibre_nodes),
    )


def run_siting(
    config: Config,
    session: Session,
    *,
    candidates: int,
    max_sites: int,
    budget_mvnd: float | None,
    spacing_km: float,
    candidate_spacing_km: float,
    method: str,
) -> dict[str, Any]:
    """Choose up to ``max_sites`` new sites within the budget; each chosen site with its cost,
    backhaul and what it lifts to the target class. Saved as ``siting/latest.json``."""
    if method not in METHODS:
        raise ValidationError(
            "bad method", details=[{"field": "method", "reason": "must be ip or greedy"}]
        )
    started = time.perf_counter()
    problem = siting_problem(config, session)
    dem, inputs, plan = problem.dem, problem.inputs, problem.inputs.planning
    cands = siting.generate_candidates(
        dem,
        problem.area,
        min_spacing_m=candidate_spacing_km * 1000,
        n_max=candidates,
        extra_points=problem.centres,
    )
    costs = siting.site_costs(
        dem,
        cands,
        fibre_nodes=problem.fibre_nodes,
        fibre_fed_sites=problem.fibre_fed,
        roads=problem.roads,
    )
    matrix = siting.candidate_gains(
        dem,
        cands,
        problem.demand,
        gain_params=plan.gain,
        params=plan.coverage,
        backhaul_capacity_mbps=[c.capacity_mbps for c in costs],
    )
    select_sites = siting.ip_select if method == "ip" else siting.greedy_select
    chosen = select_sites(
        matrix,
        costs=[c.total_cost for c in costs],
        budget=budget_mvnd,
        max_sites=max_sites,
        min_spacing_m=spacing_km * 1000,
    )
    sites = []
    for i, gain in zip(chosen.chosen, chosen.marginal_gains, strict=True):
        candidate, cost, lifted = cands[i], costs[i], matrix.covers[i]
        lon, lat = inputs.lonlat(candidate.x_m, candidate.y_m)
        sites.append(
            {
                "code": candidate.code,
                "lon": lon,
                "lat": lat,
                "source": candidate.source,
                "ground_elevation_m": round(candidate.ground_elevation_m, 1),
                "total_cost_mvnd": round(cost.total_cost, 1),
                "backhaul": cost.kind,
                "backhaul_to": cost.to,
                "backhaul_distance_m": round(cost.distance_m),
                "marginal_gain": round(gain, 1),
                "population_lifted": int(matrix.population[lifted].sum()),
                "sellers_lifted": int(matrix.sellers[lifted].sum()),
                "lifted": [matrix.demand[j].code for j in lifted],
            }
        )
    result = {
        "method": chosen.method,
        "status": chosen.status,
        "mip_gap": chosen.mip_gap,
        "objective": chosen.objective,
        "cost_mvnd": round(chosen.cost, 1),
        "candidates": len(cands),
        "fibre_routes": "roads" if problem.roads is not None else "straight",
        "budget_mvnd": budget_mvnd,
        "max_sites": max_sites,
        "target_class": plan.gain.target_class,
        "backhaul_share_for_streams": plan.gain.backhaul_share_for_streams,
        "sites": sites,
        "wall_s": round(time.perf_counter() - started, 2),
        "computed_at": datetime.now(UTC).isoformat(),
    }
    folder = Path(config["DATA_DIR"]) / "siting"
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / "latest.json.partial"
    staged.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    staged.replace(folder / "latest.json")
    return result


def latest_siting(config: Config) -> dict[str, Any]:
    path = Path(config["DATA_DIR"]) / "siting" / "latest.json"
    if not path.exists():
        raise NotFoundError("no siting run yet: run `flask siting run` or POST /api/v1/siting")
    result: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return result
