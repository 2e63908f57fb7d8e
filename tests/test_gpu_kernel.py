"""The CUDA kernels (`registry.radio.gpu`) against the CPU kernels, on numba-cuda's simulator.

The simulator is chosen by ``NUMBA_ENABLE_CUDASIM=1``, which numba.cuda reads when it is
first imported and which then holds for the whole process. So the GPU side runs in a child
process (this file run as a script, with that variable set in the child's environment
only) that writes its results to a file; the CPU side and every comparison run here. This
process never sees the variable, so no other test can end up on the simulator.

Without a device every case still runs (the simulator executes the kernels as Python,
slowly: the DEMs are small, 20 to 23 cells of radius). Sites sit in the middle, near a
corner (window partly outside the DEM) and next to a no-data hole; antenna heights,
frequencies, analysis steps 1 and 3, square and non-square cells vary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from affine import Affine

from registry.errors import ServiceUnavailable, ValidationError
from registry.radio import gpu
from registry.radio.coverage import CoverageParams, Model, line_of_sight, site_path_loss
from registry.terrain import Dem, synthetic_dem

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE_DB = 0.1
# (row, col) of the site cell, antenna height, frequencies
SITES = [
    ((24, 28), 30.0, (1800.0, 700.0)),
    ((4, 51), 10.0, (3500.0,)),
    ((17, 38), 45.0, (2600.0,)),
]
# (dem, model, analysis step, radius, sites): every run of `gpu.site_path_losses`
LOSS_RUNS: list[tuple[str, Model, int, float, int]] = [
    ("square", "deygout", 1, 600.0, 3),
    ("square", "deygout", 3, 600.0, 3),
    ("oblong", "deygout", 1, 450.0, 2),
    ("square", "rma", 3, 600.0, 3),
    ("square", "hata", 3, 600.0, 3),
    ("square", "p1812", 3, 600.0, 3),  # no CUDA kernel: the CPU sweep
]
# (dem, target height, radius): every run of `gpu.line_of_sight_masks` (all sites)
LOS_RUNS = [("square", 1.5, 600.0), ("square", 10.0, 600.0), ("oblong", 1.5, 450.0)]


def dems() -> dict[str, Dem]:
    """48 x 56 cells of 30 m with a no-data hole, and the same terrain on 30 x 20 m cells."""
    square = synthetic_dem((48, 56), cell_size_m=30.0, seed=5, relief_m=700.0)
    elevation = square.elevation_m.copy()
    elevation[20:24, 34:37] = np.nan
    t = square.transform
    return {
        "square": Dem(elevation, t, square.crs),
        "oblong": Dem(elevation, Affine(30.0, 0.0, t.c, 0.0, -20.0, t.f), square.crs),
    }


def site_xy(dem: Dem, cell: tuple[int, int]) -> tuple[float, float]:
    x, y = dem.transform @ (cell[1] + 0.5, cell[0] + 0.5)
    return float(x), float(y)


def params(model: Model, step: int, radius_m: float) -> CoverageParams:
    return CoverageParams(max_radius_m=radius_m, analysis_step=step, model=model)


# --------------------------------------------------------------------------- GPU side (child)


def gpu_side(path: Path) -> None:
    """Every GPU result, on the simulator, into an .npz (+ a .json of the rest)."""
    from numba import cuda

    grids = dems()
    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {
        "cuda_is_available": bool(cuda.is_available()),
        "simulator_active": gpu.simulator_active(),
        "device_present": gpu.device_present(),
        "auto": gpu.kernel_backend("auto"),
        "gpu": gpu.kernel_backend("gpu"),
        "seconds": {},
    }
    for run in LOSS_RUNS:
        name, model, step, radius, count = run
        dem = grids[name]
        antennas = [gpu.Antenna(*site_xy(dem, c), h, f) for c, h, f in SITES[:count]]
        start = time.perf_counter()
        losses = gpu.site_path_losses(dem, antennas, params(model, step, radius))
        meta["seconds"][repr(run)] = time.perf_counter() - start
        for i, loss in enumerate(losses):
            arrays[f"{run}{i}"] = loss.loss_db
            meta[f"{run}{i}"] = [loss.key, loss.row0, loss.col0, loss.z_tx_m, loss.freqs_mhz]
    for los_run in LOS_RUNS:
        name, target, radius = los_run
        dem = grids[name]
        observers = [gpu.Observer(*site_xy(dem, c), h) for c, h, _ in SITES]
        start = time.perf_counter()
        masks = gpu.line_of_sight_masks(
            dem, observers, target_height_m=target, max_distance_m=radius
        )
        meta["seconds"][repr(los_run)] = time.perf_counter() - start
        for i, (mask, transform) in enumerate(masks):
            arrays[f"{los_run}{i}"] = mask
            meta[f"{los_run}{i}"] = list(transform)[:6]
    # the hooks of the public functions: one site each
    dem = grids["square"]
    (cell, height, freqs) = SITES[0]
    hook = site_path_loss(
        dem,
        *site_xy(dem, cell),
        antenna_height_m=height,
        freqs_mhz=freqs,
        params=params("deygout", 3, 600.0),
        backend="gpu",
    )
    arrays["hook_loss"] = hook.loss_db
    mask, _ = line_of_sight(
        dem,
        *site_xy(dem, cell),
        observer_height_m=height,
        target_height_m=1.5,
        max_distance_m=600.0,
        backend="gpu",
    )
    arrays["hook_los"] = mask
    np.savez(path, **arrays)
    path.with_suffix(".json").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def gpu_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    path = tmp_path_factory.mktemp("gpu") / "results.npz"
    env = {
        **os.environ,
        "NUMBA_ENABLE_CUDASIM": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run([sys.executable, __file__, str(path)], env=env, check=True, timeout=300)
    return np.load(path), json.loads(path.with_suffix(".json").read_text())


# --------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize("run", LOSS_RUNS, ids=lambda r: f"{r[0]}-{r[1]}-step{r[2]}")
def test_losses_match_the_cpu_kernels(
    gpu_results: tuple[Any, dict[str, Any]], run: tuple[str, Model, int, float, int]
) -> None:
    arrays, meta = gpu_results
    name, model, step, radius, count = run
    dem = dems()[name]
    worst = 0.0
    for i, (cell, height, freqs) in enumerate(SITES[:count]):
        cpu = site_path_loss(
            dem,
            *site_xy(dem, cell),
            antenna_height_m=height,
            freqs_mhz=freqs,
            params=params(model, step, radius),
        )
        got = arrays[f"{run}{i}"]
        assert meta[f"{run}{i}"] == [cpu.key, cpu.row0, cpu.col0, cpu.z_tx_m, list(cpu.freqs_mhz)]
        assert got.shape == cpu.loss_db.shape
        assert np.array_equal(np.isnan(got), np.isnan(cpu.loss_db))
        assert np.isfinite(cpu.loss_db).sum() > 100 // step**2  # a real comparison
        worst = max(worst, float(np.nanmax(np.abs(got - cpu.loss_db))))
    print(f"{run}: max |GPU - CPU| = {worst:.2e} dB")
    assert worst <= TOLERANCE_DB


@pytest.mark.parametrize("run", LOS_RUNS, ids=lambda r: f"{r[0]}-target{r[1]:g}")
def test_line_of_sight_masks_are_the_cpu_kernels(
    gpu_results: tuple[Any, dict[str, Any]], run: tuple[str, float, float]
) -> None:
    arrays, meta = gpu_results
    name, target, radius = run
    dem = dems()[name]
    for i, (cell, height, _) in enumerate(SITES):
        mask, transform = line_of_sight(
            dem,
            *site_xy(dem, cell),
            observer_height_m=height,
            target_height_m=target,
            max_distance_m=radius,
        )
        assert 0 < mask.sum() < mask.size  # some cells hidden, some seen
        assert np.array_equal(arrays[f"{run}{i}"], mask)
        assert meta[f"{run}{i}"] == pytest.approx(list(transform)[:6])


def test_public_functions_route_to_the_gpu(gpu_results: tuple[Any, dict[str, Any]]) -> None:
    arrays, _ = gpu_results
    assert np.array_equal(arrays["hook_loss"], arrays[f"{LOSS_RUNS[1]}0"], equal_nan=True)
    assert np.array_equal(arrays["hook_los"], arrays[f"{LOS_RUNS[0]}0"])


def test_auto_never_picks_the_simulator(gpu_results: tuple[Any, dict[str, Any]]) -> None:
    _, meta = gpu_results
    print("simulator seconds per run:", meta["seconds"])
    assert meta["cuda_is_available"]  # the simulator says a device is there
    assert meta["simulator_active"]
    assert not meta["device_present"]
    assert meta["auto"] == "cpu"
    assert meta["gpu"] == "gpu"


def test_gpu_without_device_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "device_present", lambda: False)
    monkeypatch.setattr(gpu, "simulator_active", lambda: False)
    dem = dems()["square"]
    x, y = site_xy(dem, SITES[0][0])
    with pytest.raises(ServiceUnavailable, match="backend 'gpu' needs a CUDA device"):
        site_path_loss(dem, x, y, antenna_height_m=30.0, freqs_mhz=[1800.0], backend="gpu")
    assert gpu.kernel_backend("auto") == "cpu"
    monkeypatch.setattr(gpu, "_numba_cuda", lambda: None)
    with pytest.raises(ServiceUnavailable, match="numba-cuda"):
        line_of_sight(
            dem,
            x,
            y,
            observer_height_m=30.0,
            target_height_m=1.5,
            max_distance_m=600.0,
            backend="gpu",
        )
    unknown: Any = "tpu"
    with pytest.raises(ValidationError, match="backend must be one of") as info:
        site_path_loss(dem, x, y, antenna_height_m=30.0, freqs_mhz=[1800.0], backend=unknown)
    assert info.value.details == [{"field": "backend", "reason": "unknown backend"}]
    # "dask" and "cpu" are the CPU kernels
    cpu = site_path_loss(dem, x, y, antenna_height_m=30.0, freqs_mhz=[1800.0], backend="cpu")
    dask = site_path_loss(dem, x, y, antenna_height_m=30.0, freqs_mhz=[1800.0], backend="dask")
    assert np.array_equal(cpu.loss_db, dask.loss_db, equal_nan=True)


def test_benchmark_exits_0_without_a_device() -> None:
    env = {**os.environ, "NUMBA_DISABLE_CUDA": "1", "PYTHONPATH": str(ROOT)}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no CUDA device" in done.stdout


if __name__ == "__main__":
    gpu_side(Path(sys.argv[1]))
