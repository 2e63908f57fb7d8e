"""National-scale coverage on Dask: time and peak memory per stage, and the fitted scaling.

Generates the synthetic national DEM (30 m, tiled GeoTIFF) and registry of
`synthetic_national` once, then computes the coverage of square sub-areas holding about
1,000, 3,000 and 10,000 sites at the registry's density (a VRT window of the national DEM,
centred; analysis step 3 and 20 km radius as in the app; cold loss cache) with
`compute_coverage_to_geotiffs` on a Dask `LocalCluster` of single-threaded worker
processes, started once. Stages per run:

- read DEM: hash of the sub-area's DEM (the loss cache key), read strip by strip;
- losses: one task per site, losses written to the disk cache;
- mosaic: one task per 128 x 128-cell tile, each written to GeoTIFFs as it arrives;
- write: the tiled GeoTIFFs made COGs with overviews.

Peak memory is the largest sum of the resident set sizes of this process and all its
children (the Dask workers), sampled every 0.1 s during the stage (tracemalloc would miss
numpy buffers and the workers). The time of each stage and of the whole run is fitted as
time ∝ sites^b (least squares on logs) and extrapolated to ``--national-sites``.

Usage::

    python benchmarks/national.py [--sites 1000 3000 10000] [--workers 2] [--seed 1]
                                  [--work-dir DIR] [--national-sites 100000]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # the kernels are single-threaded
os.environ.setdefault("GDAL_CACHEMAX", "256")  # MB of GDAL block cache per process

import argparse
import contextlib
import math
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psutil
import rasterio

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from benchmarks.coverage import print_table  # noqa: E402
from benchmarks.synthetic_national import (  # noqa: E402
    CELL_SIZE_M,
    KM2_PER_SITE,
    NATIONAL_AREA_KM2,
    Registry,
    national_shape,
    synthetic_registry,
    window_vrt,
    write_dem,
)
from registry.radio.coverage import CoverageParams, compute_coverage_to_geotiffs  # noqa: E402
from registry.radio.executors import DaskExecutor  # noqa: E402
from registry.terrain import DemFile  # noqa: E402

ANALYSIS_STEP = 3  # as the app (COVERAGE_ANALYSIS_STEP)
RADIUS_M = 20_000.0  # as the app (COVERAGE_MAX_RADIUS_M)
SAMPLE_S = 0.1


class Stages:
    """Wall time and peak RSS (this process + children) of consecutive stages."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []  # (stage, seconds, peak bytes)
        self._name: str | None = None
        self._start = 0.0
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def rss() -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a worker exiting
                total += child.memory_info().rss
        return total

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            rss = self.rss()
            with self._lock:
                self._peak = max(self._peak, rss)

    def mark(self, name: str | None) -> None:
        """End the current stage (if any) and start `name` (None: just end)."""
        now, rss = time.perf_counter(), self.rss()
        with self._lock:
            if self._name is not None:
                self.rows.append((self._name, now - self._start, max(self._peak, rss)))
            self._name, self._start, self._peak = name, now, rss

    def close(self) -> None:
        self.mark(None)
        self._stop.set()


def _import_registry() -> None:
    import registry.radio.coverage  # noqa: F401


def fit_exponent(sites: Sequence[int], seconds: Sequence[float]) -> tuple[float, float]:
    """(b, a) of log t = a + b log n by least squares."""
    b, a = np.polyfit(np.log(sites), np.log(seconds), 1)
    return float(b), float(a)


def run_sites(
    n_sites: int,
    dem_path: Path,
    national: Registry,
    executor: DaskExecutor,
    work_dir: Path,
    stages: Stages,
    *,
    km2_per_site: float,
) -> dict[str, object]:
    """One coverage run on the centred sub-area holding about `n_sites` sites."""
    with rasterio.open(dem_path) as src:
        rows, cols = src.height, src.width
    side = min(round(math.sqrt(n_sites * km2_per_site * 1e6) / CELL_SIZE_M), rows, cols)
    row_off, col_off = (rows - side) // 2, (cols - side) // 2
    dem = window_vrt(dem_path, work_dir / f"dem_{n_sites}.vrt", row_off, col_off, side, side)
    left, top = dem.transform @ (0, 0)
    right, bottom = dem.transform @ (side, side)
    sectors = [s for s in national.sectors if left <= s.x_m < right and bottom < s.y_m <= top]
    n_groups = len({(s.x_m, s.y_m, s.height_m) for s in sectors})

    def progress(done: int, total: int) -> None:
        if done == n_groups:
            stages.mark("mosaic")
        if done == total:
            stages.mark("write")

    params = CoverageParams(max_radius_m=RADIUS_M, analysis_step=ANALYSIS_STEP)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="loss-cache-") as cache:
        stages.mark("read DEM")
        _ = dem.fingerprint
        stages.mark("losses")
        files = compute_coverage_to_geotiffs(
            dem,
            sectors,
            work_dir / f"coverage_{n_sites}",
            params,
            cache_dir=cache,
            executor=executor,
            progress=progress,
        )
        stages.mark(None)
    return {
        "sites": n_groups,
        "sectors": len(sectors),
        "area_km2": (side * CELL_SIZE_M / 1e3) ** 2,
        "grid": files.shape,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sites",
        type=int,
        nargs="+",
        default=[1000, 3000, 10000],
        help="site counts of the runs (sub-areas at the registry's density)",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="Dask worker processes, one thread each"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--area-km2", type=float, default=NATIONAL_AREA_KM2, help="area of the national DEM"
    )
    parser.add_argument("--km2-per-site", type=float, default=KM2_PER_SITE)
    parser.add_argument(
        "--national-sites", type=int, default=100_000, help="site count to extrapolate to"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="keep the DEM and outputs here (default: a temporary directory); "
        "an existing dem.tif there is reused (same seed and area assumed)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="national-") as tmp:
        work_dir = args.work_dir or Path(tmp)
        work_dir.mkdir(parents=True, exist_ok=True)
        stages = Stages()
        dem_path = work_dir / "dem.tif"
        shape = national_shape(args.area_km2)
        stages.mark("generate DEM")
        if not dem_path.exists():
            write_dem(dem_path, args.seed, shape)
        stages.mark("generate registry")
        national = synthetic_registry(
            DemFile(dem_path),
            args.seed,
            km2_per_site=args.km2_per_site,
        )
        stages.mark("start cluster")
        with DaskExecutor(n_workers=args.workers) as executor:
            executor.client.run(_import_registry)  # not counted in the first run
            stages.mark(None)
            print(
                f"national DEM {shape[1]} x {shape[0]} cells of {CELL_SIZE_M:.0f} m "
                f"({shape[0] * shape[1] / 1e6:.0f} M cells), "
                f"{len({s.site_code for s in national.sectors})} sites, "
                f"{len(national.villages)} villages, {len(national.sellers)} sellers "
                f"(all SYNTHETIC, seed {args.seed}); "
                f"{args.workers} Dask workers x 1 thread, {os.cpu_count()} CPUs",
                flush=True,
            )
            setup = list(stages.rows)
            runs = []
            for n in args.sites:
                first = len(stages.rows)
                info = run_sites(
                    n,
                    dem_path,
                    national,
                    executor,
                    work_dir,
                    stages,
                    km2_per_site=args.km2_per_site,
                )
                runs.append((info, stages.rows[first:]))
                print(f"  {n} sites: {sum(t for _, t, _ in stages.rows[first:]):.1f} s", flush=True)
        stages.close()

    gb = 1024**3
    rows = [(name, "national", f"{t:.1f} s", f"{peak / gb:.2f} GB") for name, t, peak in setup]
    for info, run in runs:
        grid = "x".join(str(v) for v in info["grid"][::-1])  # type: ignore[index]
        label = (
            f"{info['sites']} sites / {info['sectors']} sectors, "
            f"{info['area_km2']:,.0f} km², grid {grid} @ {CELL_SIZE_M * ANALYSIS_STEP:.0f} m"
        )
        rows += [(name, label, f"{t:.1f} s", f"{peak / gb:.2f} GB") for name, t, peak in run]
        rows.append(
            (
                "total",
                label,
                f"{sum(t for _, t, _ in run):.1f} s",
                f"{max(p for _, _, p in run) / gb:.2f} GB",
            )
        )
    print_table(rows, header=("stage", "run", "time", "peak RSS (driver + workers)"))

    if len(runs) < 2:
        return
    sites = [int(info["sites"]) for info, _ in runs]  # type: ignore[call-overload]
    names = [name for name, _, _ in runs[0][1]] + ["total"]
    fit_rows = []
    for name in names:
        seconds = [sum(t for stage, t, _ in run if name in (stage, "total")) for _, run in runs]
        b, a = fit_exponent(sites, seconds)
        fit_rows.append(
            (
                name,
                f"b = {b:.2f}",
                " / ".join(f"{s:.1f}" for s in seconds) + " s",
                f"{math.exp(a) * args.national_sites**b / 60:.1f} min",
            )
        )
    peak = max(p for _, run in runs for _, _, p in run)
    print()
    print_table(
        fit_rows,
        header=(
            "stage",
            "time ∝ sites^b",
            "measured (" + " / ".join(str(s) for s in sites) + " sites)",
            f"extrapolated to {args.national_sites:,} sites",
        ),
    )
    print(
        f"\npeak RSS over all runs {peak / gb:.2f} GB (bounded: tiles stream to disk, losses "
        "stay in the disk cache)"
    )


if __name__ == "__main__":
    main()
