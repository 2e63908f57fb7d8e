"""Path-loss fidelity of the coverage models: sensitivity to the receiver position, and how
closely each model's radial sweep reproduces its own per-profile evaluation.

For each model (deygout, p1812, rma, hata), a few sites at random on the DEM (antenna 30 m,
receiver 1.5 m, 1800 MHz, 10 km radius) and random receiver cells within the radius:

- half-cell change: |L(x + u) - L(x)| with x a cell centre and u half a DEM cell in a random
  direction, both by the model's per-profile evaluation on the straight terrain profile
  (`registry.terrain.terrain_profile`, bilinear at the DEM resolution): how much a loss map
  at that resolution can be trusted at a point;
- sweep vs per-profile: |sweep(cell) - L(cell centre)|: what the radial sweep
  (`registry.radio.coverage.site_path_loss`) costs against evaluating each cell's own
  straight profile (the sweep takes the nearest ray's samples instead);
- sweep vs point: the largest |sweep(cell) - point_path_loss(cell)| (siting's per-point
  losses), which should be 0 (float32 rounding): maps and siting use the same loss.

Per-profile models: free space + Deygout (`deygout_loss_db` on the earth-bulged profile, as
`point_path_loss`), P.1812 (`p1812_loss`, p = pL = 50 %), RMa (LOS from the profile), Hata.

The DEM: the demo's (``instance/data/dem.tif``) when it exists, or ``--dem``, else a
synthetic mountainous one (2048 x 2048 cells of 30 m, 2000 m relief).

Usage::

    python benchmarks/fidelity.py [--dem DEM.tif] [--sites 4] [--cells 250] [--seed 1]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from registry.radio.coverage import CoverageParams, point_path_loss, site_path_loss
from registry.radio.diffraction import deygout_loss_db
from registry.radio.p1812 import p1812_loss
from registry.radio.pathloss import cost231_hata_db, free_space_loss_db, rma_path_loss_db
from registry.terrain import Dem, elevation_at, load_dem, synthetic_dem, terrain_profile

DEMO_DEM = Path(__file__).resolve().parents[1] / "instance" / "data" / "dem.tif"
MODELS = ("deygout", "p1812", "rma", "hata")
HTG_M = 30.0
RX_H_M = 1.5
FREQ_MHZ = 1800.0
RADIUS_M = 10_000.0

ProfileLoss = Callable[[Dem, tuple[float, float], float, tuple[float, float]], float]


def _deygout(dem: Dem, site: tuple[float, float], z_tx: float, rx: tuple[float, float]) -> float:
    prof = terrain_profile(dem, site, rx)
    z = prof.effective_m
    tx_h = z_tx - z[0]
    d3 = math.hypot(prof.distance_m[-1], z_tx - (z[-1] + RX_H_M))
    return free_space_loss_db(max(d3, 1.0), FREQ_MHZ) + deygout_loss_db(
        prof.distance_m, z, tx_h, RX_H_M, FREQ_MHZ
    )


def _p1812(dem: Dem, site: tuple[float, float], z_tx: float, rx: tuple[float, float]) -> float:
    prof = terrain_profile(dem, site, rx)
    return p1812_loss(
        prof.distance_m / 1000.0,
        prof.elevation_m,
        htg_m=z_tx - float(prof.elevation_m[0]),
        hrg_m=RX_H_M,
        f_ghz=FREQ_MHZ / 1000.0,
        p_pct=50.0,
    ).lb_db


def _rma(dem: Dem, site: tuple[float, float], z_tx: float, rx: tuple[float, float]) -> float:
    prof = terrain_profile(dem, site, rx)
    d = prof.distance_m
    z = prof.effective_m
    sight = z_tx + (z[-1] + RX_H_M - z_tx) * d / d[-1]  # the line between the antennas
    los = bool(np.all(z[1:-1] <= sight[1:-1]))
    return rma_path_loss_db(d[-1], FREQ_MHZ, HTG_M, RX_H_M, los)


def _hata(dem: Dem, site: tuple[float, float], z_tx: float, rx: tuple[float, float]) -> float:
    d = math.hypot(rx[0] - site[0], rx[1] - site[1])
    return cost231_hata_db(d, FREQ_MHZ, HTG_M, RX_H_M)


PER_PROFILE: dict[str, ProfileLoss] = {
    "deygout": _deygout,
    "p1812": _p1812,
    "rma": _rma,
    "hata": _hata,
}


def _dem(path: Path | None) -> tuple[Dem, str]:
    path = path or (DEMO_DEM if DEMO_DEM.exists() else None)
    if path is not None:
        return load_dem(path, crs=None), str(path)
    dem = synthetic_dem((2048, 2048), cell_size_m=30.0, seed=11, relief_m=2000.0)
    return dem, "synthetic 2048 x 2048 x 30 m, relief 2000 m"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dem", type=Path)
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--cells", type=int, default=250, help="receiver cells per site")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    dem, source = _dem(a.dem)
    cell = min(dem.cell_size)
    margin = int(RADIUS_M / cell) + 2
    rng = np.random.default_rng(a.seed)
    rows, cols = dem.shape
    print(f"DEM: {source}; {a.sites} sites, {a.cells} cells each, {FREQ_MHZ:.0f} MHz")
    sites = []
    while len(sites) < a.sites:
        r, c = rng.integers(margin, rows - margin), rng.integers(margin, cols - margin)
        if np.isfinite(dem.elevation_m[r, c]):
            sites.append((int(r), int(c)))
    header = (
        f"{'model':8} {'half-cell change p50':>21} {'p95':>7}   "
        f"{'sweep vs profile median':>24} {'p95':>7}   {'sweep vs point max':>18}   "
        f"{'sweep s/site':>12}"
    )
    print(header)
    for model in MODELS:
        params = CoverageParams(max_radius_m=RADIUS_M, model=model)
        changes: list[float] = []
        agreement: list[float] = []
        point_gap = 0.0
        sweep_s = 0.0
        for r, c in sites:
            site = dem.transform @ (c + 0.5, r + 0.5)
            z_tx = float(dem.elevation_m[r, c]) + HTG_M
            started = time.perf_counter()
            loss = site_path_loss(
                dem, *site, antenna_height_m=HTG_M, freqs_mhz=[FREQ_MHZ], params=params
            )
            sweep_s += time.perf_counter() - started
            evaluate = PER_PROFILE[model]
            done = 0
            cells: list[tuple[int, int]] = []
            while done < a.cells:
                dr, dc = rng.integers(-margin + 2, margin - 1, 2)
                if math.hypot(dr, dc) * cell > RADIUS_M - cell or math.hypot(dr, dc) < 3:
                    continue
                rx = dem.transform @ (c + dc + 0.5, r + dr + 0.5)
                angle = rng.uniform(0.0, 2.0 * math.pi)
                moved = (rx[0] + 0.5 * cell * math.cos(angle), rx[1] + 0.5 * cell * math.sin(angle))
                if not np.isfinite(elevation_at(dem, [rx[0], moved[0]], [rx[1], moved[1]])).all():
                    continue
                at_cell = evaluate(dem, site, z_tx, rx)
                changes.append(abs(evaluate(dem, site, z_tx, moved) - at_cell))
                swept = float(loss.loss_db[0, r + dr - loss.row0, c + dc - loss.col0])
                agreement.append(abs(swept - at_cell))
                cells.append((r + dr, c + dc))
                done += 1
            rr, cc = np.array(cells).T
            points = point_path_loss(
                dem,
                *site,
                antenna_height_m=HTG_M,
                freq_mhz=FREQ_MHZ,
                rows=rr,
                cols=cc,
                params=params,
            )
            swept_all = loss.loss_db[0, rr - loss.row0, cc - loss.col0]
            point_gap = max(point_gap, float(np.max(np.abs(points - swept_all))))
        ch = np.array(changes)
        ag = np.array(agreement)
        print(
            f"{model:8} {np.median(ch):18.2f} dB {np.percentile(ch, 95):7.2f}   "
            f"{np.median(ag):21.2f} dB {np.percentile(ag, 95):7.2f}   "
            f"{point_gap:15.4f} dB   {sweep_s / len(sites):12.2f}"
        )


if __name__ == "__main__":
    main()
