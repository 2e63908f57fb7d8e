"""GPU kernels benchmark: line of sight and path loss per second on a CUDA device.

On the 4000 x 4000 cell 30 m synthetic DEM of `benchmarks/coverage.py` (20 km radius, the
same observer and target heights), for ``--sites`` random sites whose windows lie inside
the DEM, batched by `registry.radio.gpu`:

- line of sight (`gpu.line_of_sight_masks`) and path loss with diffraction (free space +
  Deygout, one frequency, `gpu.site_path_losses`) on the DEM grid and at the analysis
  step, in G cells/s (window cells of the DEM per second, host arrays in and out);
- ratios to GDAL's `ViewshedGenerate` on one CPU thread (measured here, on the same DEM,
  with the helpers of `benchmarks/coverage.py`) and to the CPU kernels run on all cores
  (one site per thread, the same sites), with the largest |GPU - CPU| loss difference and
  the count of identical line-of-sight masks on those sites;
- the projected time of the loss stage of a ``--national-sites`` mosaic at the analysis
  step (sites x measured time per site, GPU and CPU).

Without a CUDA device (or on numba-cuda's simulator) it says so and exits 0.

Usage::

    python benchmarks/gpu.py [--sites 256] [--analysis-step 3] [--national-sites 100000]
"""

from __future__ import annotations

import os

os.environ.setdefault("GDAL_NUM_THREADS", "1")

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from registry.radio import gpu  # noqa: E402

R = TypeVar("R")


def timed(fn: Callable[[], R]) -> tuple[float, R]:
    """(best wall time of two calls after a warm-up call, seconds; the last result)."""
    result = fn()
    best = np.inf
    for _ in range(2):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def on_all_cores(fn: Callable[[int], R], count: int) -> tuple[float, list[R]]:
    """Wall time of fn(0..count-1) on a thread per CPU (the kernels release the GIL)."""
    fn(0)  # compiled / cache loaded
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        start = time.perf_counter()
        results = list(pool.map(fn, range(count)))
        return time.perf_counter() - start, results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=256, help="sites per GPU run")
    parser.add_argument("--analysis-step", type=int, default=3, help="odd analysis step")
    parser.add_argument("--national-sites", type=int, default=100_000)
    args = parser.parse_args(argv)
    if not gpu.device_present():
        why = "numba-cuda's simulator is active" if gpu.simulator_active() else "none usable"
        print(f"no CUDA device ({why}): nothing to measure")
        return 0

    from numba import cuda

    from benchmarks.coverage import (
        OBSERVER_HEIGHT_M,
        RADIUS_M,
        TARGET_HEIGHT_M,
        best_time,
        gdal_viewshed,
        print_table,
    )
    from registry.radio.coverage import CoverageParams, SiteLoss, line_of_sight, site_path_loss
    from registry.terrain import synthetic_dem

    device = cuda.get_current_device().name
    device = device.decode() if isinstance(device, bytes) else device
    print(f"device: {device}, CPUs {os.cpu_count()}, radius {RADIUS_M / 1000:.0f} km")
    dem = synthetic_dem((4000, 4000), cell_size_m=30.0, seed=1, relief_m=2500.0)
    x, y = dem.transform @ (2000.25, 2000.25)
    gdal_run = gdal_viewshed(dem, x, y)
    t_gdal = best_time(gdal_run)
    gdal_rate = gdal_run().size / t_gdal
    n = int(np.ceil(RADIUS_M / 30.0))
    rng = np.random.default_rng(1)
    cells = rng.integers(n, 4000 - n, size=(args.sites, 2))
    xy = [dem.transform @ (c + 0.5, r + 0.5) for r, c in cells]
    window_cells = args.sites * (2 * n + 1) ** 2
    rows = [
        (
            "GDAL viewshed, 1 CPU thread",
            f"{gdal_rate / 1e9:.3f} Gcells/s",
            f"{t_gdal * 1e3:.1f} ms / site",
            "reference",
        )
    ]

    observers = [gpu.Observer(px, py, OBSERVER_HEIGHT_M) for px, py in xy]
    t_los, gpu_masks = timed(
        lambda: gpu.line_of_sight_masks(
            dem, observers, target_height_m=TARGET_HEIGHT_M, max_distance_m=RADIUS_M
        )
    )

    def cpu_los(i: int) -> np.ndarray:
        return line_of_sight(
            dem,
            *xy[i],
            observer_height_m=OBSERVER_HEIGHT_M,
            target_height_m=TARGET_HEIGHT_M,
            max_distance_m=RADIUS_M,
        )[0]

    t_cpu_los, cpu_masks = on_all_cores(cpu_los, args.sites)
    same = sum(np.array_equal(g[0], c) for g, c in zip(gpu_masks, cpu_masks, strict=True))
    rate = window_cells / t_los
    rows.append(
        (
            f"line of sight, GPU, {args.sites} sites per call",
            f"{rate / 1e9:.3f} Gcells/s",
            f"{t_los / args.sites * 1e3:.2f} ms / site; masks identical to the CPU's: "
            f"{same}/{args.sites}",
            f"{rate / gdal_rate:.1f}x GDAL 1 thread, "
            f"{t_cpu_los / t_los:.1f}x CPU on {os.cpu_count()} cores",
        )
    )

    steps = sorted({1, args.analysis_step})
    per_site: dict[int, tuple[float, float]] = {}
    for step in steps:
        params = CoverageParams(max_radius_m=RADIUS_M, analysis_step=step)
        antennas = [gpu.Antenna(px, py, OBSERVER_HEIGHT_M, (1800.0,)) for px, py in xy]

        def gpu_loss(p: CoverageParams = params, a: list[gpu.Antenna] = antennas) -> list[SiteLoss]:
            return gpu.site_path_losses(dem, a, p)

        t_gpu, gpu_losses = timed(gpu_loss)

        def cpu_loss(i: int, p: CoverageParams = params) -> np.ndarray:
            return site_path_loss(
                dem, *xy[i], antenna_height_m=OBSERVER_HEIGHT_M, freqs_mhz=[1800.0], params=p
            ).loss_db

        t_cpu, cpu_losses = on_all_cores(cpu_loss, args.sites)
        worst = max(
            float(np.nanmax(np.abs(g.loss_db - c)))
            for g, c in zip(gpu_losses, cpu_losses, strict=True)
        )
        per_site[step] = (t_gpu / args.sites, t_cpu / args.sites)
        rate = window_cells / t_gpu
        label = "DEM grid" if step == 1 else f"analysis step {step}"
        rows.append(
            (
                f"path loss (Deygout), GPU, {label}",
                f"{rate / 1e9:.3f} Gcells/s",
                f"{t_gpu / args.sites * 1e3:.2f} ms / site; max |GPU - CPU| {worst:.1e} dB",
                f"{rate / gdal_rate:.1f}x GDAL 1 thread, "
                f"{t_cpu / t_gpu:.1f}x CPU on {os.cpu_count()} cores",
            )
        )

    t_site_gpu, t_site_cpu = per_site[args.analysis_step]
    rows.append(
        (
            f"projected losses, {args.national_sites:,} sites, step {args.analysis_step}",
            f"{args.national_sites * t_site_gpu / 60:.1f} min GPU",
            f"{args.national_sites * t_site_cpu / 60:.1f} min CPU on {os.cpu_count()} cores",
            "loss stage only (mosaic not included)",
        )
    )
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
