"""Coverage engine benchmark: prints ratios against references measured in the same run.

(a) line-of-sight throughput of `registry.radio.coverage.line_of_sight` vs GDAL's
    `gdal.ViewshedGenerate` in process, one thread each, on a 4000 x 4000 cell
    30 m synthetic mountain DEM, 20 km radius (cells/s = window cells / time);
(b) per-site path loss of the coverage model (`--model`, default REGISTRY_COVERAGE_MODEL
    as for the app, else free space + Deygout), one frequency, one thread, as a ratio to
    (a)'s GDAL throughput;
(c) a full mosaic (best server, RSRP, SINR, uplink rate, service class) for
    about 700 sites x 3 sectors over a province-sized DEM, on 2 threads;
(d) the incremental update after editing one site.

The province DEM and the sectors are arguments: by default a synthetic
Lai Châu-sized DEM (5700 x 4300 cells of 30 m) and random sites; pass
``--dem`` (a GeoTIFF in a metric CRS) and ``--sectors`` (a CSV with the
`SectorSpec` fields) to run it on real data, or call `province_rows` with your own
callables.

Usage::

    python benchmarks/coverage.py [--analysis-step 3] [--workers 2] [--dem DEM.tif]
                                  [--sectors SECTORS.csv] [--sites 700] [--only ab|cd]
                                  [--model deygout|p1812|rma|hata]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # the kernels are single-threaded; no prange pool
os.environ.setdefault("GDAL_NUM_THREADS", "1")

import argparse
import csv
import dataclasses
import functools
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

import numpy as np

# Run as a script, this file's directory comes first on sys.path, where its name
# would shadow the `coverage` package that numba probes for: use the project root.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from registry.radio.coverage import (  # noqa: E402
    CoverageParams,
    SectorSpec,
    compute_coverage,
    line_of_sight,
    site_path_loss,
    update_coverage,
)
from registry.radio.coverage.types import Model  # noqa: E402
from registry.terrain import K_FACTOR, Dem, load_dem, synthetic_dem  # noqa: E402

RADIUS_M = 20_000.0
OBSERVER_HEIGHT_M = 30.0
TARGET_HEIGHT_M = 1.5
REPEATS = 5


def best_time(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Best wall time of `repeats` calls after one warm-up call, seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gdal_viewshed(dem: Dem, x: float, y: float) -> Callable[[], np.ndarray]:
    """Callable running GDAL's viewshed in process on an in-memory copy of the DEM."""
    from osgeo import gdal

    gdal.UseExceptions()
    rows, cols = dem.shape
    ds = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Float32)
    ds.SetGeoTransform(dem.transform.to_gdal())
    ds.SetProjection(dem.crs.to_wkt())
    ds.GetRasterBand(1).WriteArray(dem.elevation_m)

    def run() -> np.ndarray:
        out = gdal.ViewshedGenerate(
            ds.GetRasterBand(1),
            "MEM",
            "",
            [],
            x,
            y,
            OBSERVER_HEIGHT_M,
            TARGET_HEIGHT_M,
            1,
            0,
            2,
            -1,
            1.0 / K_FACTOR,
            gdal.GVM_Edge,
            RADIUS_M,
        )
        return out.GetRasterBand(1).ReadAsArray()

    return run


def synthetic_sectors(dem: Dem, n_sites: int, *, seed: int = 1) -> list[SectorSpec]:
    """Random sites with three sectors each: 80% 4G B3 (1800 MHz, 20 MHz), 20% 5G n41."""
    rng = np.random.default_rng(seed)
    rows, cols = dem.shape
    t = dem.transform
    sectors = []
    for i in range(n_sites):
        x, y = t @ (rng.uniform(0, cols), rng.uniform(0, rows))
        five_g = rng.random() < 0.2
        height = float(rng.uniform(25.0, 45.0))
        rotation = float(rng.uniform(0.0, 120.0))
        for k in range(3):
            sectors.append(
                SectorSpec(
                    site_code=f"S{i:04d}",
                    sector_code=str(k + 1),
                    x_m=float(x),
                    y_m=float(y),
                    ground_elevation_m=None,
                    height_m=height,
                    technology="5G" if five_g else "4G",
                    freq_mhz=2600.0 if five_g else 1800.0,
                    bandwidth_mhz=100.0 if five_g else 20.0,
                    azimuth_deg=(rotation + 120.0 * k) % 360.0,
                    mech_tilt_deg=2.0,
                    elec_tilt_deg=4.0,
                    h_beamwidth_deg=65.0,
                    v_beamwidth_deg=7.0,
                    gain_dbi=17.0,
                    tx_power_dbm=49.0 if five_g else 46.0,
                )
            )
    return sectors


def read_sectors(path: Path) -> list[SectorSpec]:
    """Sectors from a CSV whose header names the `SectorSpec` fields."""
    types = {f.name: f.type for f in dataclasses.fields(SectorSpec)}
    sectors = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            values: dict[str, object] = {}
            for name, text in row.items():
                kind = types[name]
                if "str" in kind and "None" not in kind:
                    values[name] = text
                elif kind == "bool":
                    values[name] = text.strip().lower() in ("1", "true", "yes")
                else:
                    values[name] = None if text == "" else float(text)
            sectors.append(SectorSpec(**values))  # type: ignore[arg-type]
    return sectors


def edited(sectors: Sequence[SectorSpec], site_code: str) -> list[SectorSpec]:
    """The sectors with one site raised by 5 m and turned by 20 degrees."""
    return [
        dataclasses.replace(s, height_m=s.height_m + 5.0, azimuth_deg=(s.azimuth_deg + 20.0) % 360)
        if s.site_code == site_code
        else s
        for s in sectors
    ]


Row = tuple[str, str, str, str]  # measure, value, detail, ratio / goal


def single_thread_rows(analysis_step: int, model: Model) -> list[Row]:
    """(a) line of sight vs GDAL and (b) per-site loss of `model`, one thread each."""
    dem = synthetic_dem((4000, 4000), cell_size_m=30.0, seed=1, relief_m=2500.0)
    x, y = dem.transform @ (2000.25, 2000.25)  # inside the centre cell, same cell for both
    gdal_run = gdal_viewshed(dem, x, y)
    t_gdal = best_time(gdal_run)
    reference = gdal_run()
    gdal_rate = reference.size / t_gdal

    def ours() -> tuple[np.ndarray, object]:
        return line_of_sight(
            dem,
            x,
            y,
            observer_height_m=OBSERVER_HEIGHT_M,
            target_height_m=TARGET_HEIGHT_M,
            max_distance_m=RADIUS_M,
        )

    t_los = best_time(ours)
    mask, _ = ours()
    in_range = reference != 2
    agreement = float(np.mean((reference[in_range] == 1) == mask[in_range]))
    los_rate = mask.size / t_los
    rows = [
        (
            "(a) GDAL viewshed, 1 thread",
            f"{gdal_rate / 1e6:.1f} Mcells/s",
            f"{t_gdal * 1e3:.1f} ms / {reference.size} cells",
            "reference",
        ),
        (
            "(a) line_of_sight (propagation), 1 thread",
            f"{los_rate / 1e6:.1f} Mcells/s",
            f"{t_los * 1e3:.1f} ms; agrees on {agreement:.4%} of cells",
            f"{los_rate / gdal_rate:.2f}x GDAL (goal >= 1.0x)",
        ),
    ]
    for step in sorted({1, analysis_step}):
        params = CoverageParams(max_radius_m=RADIUS_M, analysis_step=step, model=model)

        def loss(params: CoverageParams = params) -> object:
            return site_path_loss(
                dem, x, y, antenna_height_m=OBSERVER_HEIGHT_M, freqs_mhz=[1800.0], params=params
            )

        t_loss = best_time(loss)  # the best of as many runs as GDAL's
        rate = reference.size / t_loss  # DEM cells of the window per second
        label = "DEM grid" if step == 1 else f"analysis step {step} ({30 * step} m cells)"
        rows.append(
            (
                f"(b) site loss, {model}, 1 thread, {label}",
                f"{rate / 1e6:.2f} Mcells/s",
                f"{t_loss * 1e3:.0f} ms",
                f"{rate / gdal_rate:.3f}x GDAL (goal >= 0.25x)",
            )
        )
    return rows


def province_rows(
    province_dem: Callable[[], Dem],
    province_sectors: Callable[[Dem], list[SectorSpec]],
    *,
    analysis_step: int,
    workers: int,
    model: Model,
) -> list[Row]:
    """(c) the full mosaic and (d) the update after editing one site."""
    dem = province_dem()
    sectors = province_sectors(dem)
    n_sites = len({s.site_code for s in sectors})
    params = CoverageParams(max_radius_m=RADIUS_M, analysis_step=analysis_step, model=model)
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        result = compute_coverage(dem, sectors, params, cache_dir=cache_dir, workers=workers)
        t_full = time.perf_counter() - start
        start = time.perf_counter()
        updated = update_coverage(
            result, edited(sectors, sectors[0].site_code), cache_dir=cache_dir, workers=workers
        )
        t_update = time.perf_counter() - start
    grid = "x".join(str(v) for v in result.best_server.shape[::-1])
    return [
        (
            f"(c) mosaic {n_sites} sites / {len(sectors)} sectors, {model}, {workers} threads",
            f"{t_full:.1f} s",
            f"DEM {dem.shape[1]}x{dem.shape[0]} @ {dem.cell_size[0]:.0f} m, "
            f"grid {grid} @ {dem.cell_size[0] * analysis_step:.0f} m",
            "goal <= 60 s",
        ),
        (
            "(d) update after editing one site",
            f"{t_update:.2f} s",
            f"{updated.n_computed} site recomputed",
            "goal <= 2 s",
        ),
    ]


def print_table(
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = ("measure", "value", "detail", "ratio / goal"),
) -> None:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    line = "-+-".join("-" * w for w in widths)
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


@functools.cache
def registry_inputs() -> tuple[Dem, list[SectorSpec]]:
    """The registry's DEM and every sector of it (settings from REGISTRY_* as for the app)."""
    from registry import create_app
    from registry.services import coverage

    app = create_app()
    with app.app_context(), app.extensions["registry"]["sessions"]() as session:
        dem = coverage.working_dem(app.config)
        return dem, coverage.sector_specs(session, dem, coverage.backhaul_state(session))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--analysis-step", type=int, default=3, help="odd analysis step for (c)/(d) (1 = DEM grid)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dem", type=Path, help="province DEM (GeoTIFF, metric CRS)")
    parser.add_argument("--sectors", type=Path, help="CSV of SectorSpec rows in the DEM CRS")
    parser.add_argument(
        "--sites", type=int, default=700, help="synthetic sites (without --sectors)"
    )
    parser.add_argument(
        "--registry",
        action="store_true",
        help="(c)/(d) on the registry's own DEM and sectors (e.g. after `flask demo`)",
    )
    parser.add_argument(
        "--only",
        choices=("ab", "cd"),
        help="run only (a)/(b) (single thread, seconds) or only (c)/(d) (the province)",
    )
    parser.add_argument(
        "--model",
        choices=get_args(Model),
        default=os.environ.get("REGISTRY_COVERAGE_MODEL", CoverageParams.model),
        help="path-loss model for (b)-(d) (default: REGISTRY_COVERAGE_MODEL as for the app)",
    )
    args = parser.parse_args(argv)

    def province_dem() -> Dem:
        if args.registry:
            return registry_inputs()[0]
        if args.dem is not None:
            return load_dem(args.dem, crs=None)
        return synthetic_dem((4300, 5700), cell_size_m=30.0, seed=2, relief_m=2800.0)

    def province_sectors(dem: Dem) -> list[SectorSpec]:
        if args.registry:
            return registry_inputs()[1]
        if args.sectors is not None:
            return read_sectors(args.sectors)
        return synthetic_sectors(dem, args.sites)

    print(
        f"numba threads {os.environ['NUMBA_NUM_THREADS']}, CPUs {os.cpu_count()}, "
        f"radius {RADIUS_M / 1000:.0f} km, observer {OBSERVER_HEIGHT_M} m, "
        f"target {TARGET_HEIGHT_M} m, k = {K_FACTOR:.4f} (GDAL curvature coeff {1 / K_FACTOR:.2f})"
    )
    if args.only != "cd":
        print_table(single_thread_rows(args.analysis_step, args.model))
        sys.stdout.flush()  # (c) may run long: show (a)/(b) first
    if args.only != "ab":
        print_table(
            province_rows(
                province_dem,
                province_sectors,
                analysis_step=args.analysis_step,
                workers=args.workers,
                model=args.model,
            )
        )


if __name__ == "__main__":
    main()
