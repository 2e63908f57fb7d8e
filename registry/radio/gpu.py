"""Site path losses and line of sight on a CUDA GPU, many sites per kernel launch.

The twins of `registry.radio.coverage.site_path_loss` and `line_of_sight` for a batch of
sites: the sites' DEM windows are read on the host, stacked into one device array, and the
kernels of `registry.radio._cuda_kernels` (the CPU kernels' algorithms, one thread per ray
per site for the sweep) fill a device array of losses or masks that comes back in one copy.
Same inputs, same outputs: losses agree with the CPU kernels' within 0.1 dB on every cell
(the same terrain samples, hulls and edges; only the rounding of the arithmetic differs),
line-of-sight masks are identical.

Which kernels run is the ``backend`` of those functions (`kernel_backend`): "cpu", "gpu",
"dask" (the CPU kernels: Dask spreads sites over workers, each runs the CPU kernels), or
"auto": the GPU only when a real CUDA device is present. numba-cuda's simulator
(``NUMBA_ENABLE_CUDASIM=1``, which the tests use) runs the kernels in Python: "gpu" accepts
it, "auto" never takes it (it reports itself available).

numba.cuda is imported on first use only; ``pip install 'lai-chau-registry[gpu]'`` installs
it (a real device also needs the NVIDIA driver and CUDA runtime libraries, e.g. numba-cuda's
``cu12`` / ``cu13`` extra).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, get_args

import numpy as np
from affine import Affine

from registry.errors import ServiceUnavailable, ValidationError
from registry.radio import _kernels
from registry.radio.coverage.losses import (
    KernelBackend,
    Window,
    bulge_factor,
    loss_key,
    site_path_loss,
    site_window,
    window,
)
from registry.radio.coverage.types import CoverageParams, SiteLoss
from registry.radio.pathloss import SPEED_OF_LIGHT_M_S, free_space_loss_db
from registry.terrain import EARTH_RADIUS_M, K_FACTOR, DemSource

BACKENDS: tuple[str, ...] = get_args(KernelBackend)
GPU_MODELS = ("deygout", "rma", "hata")  # models with CUDA kernels; P.1812 runs on the CPU

# Device memory one launch may use for its windows, horizon states, masks and losses; the
# sites of a call are cut into batches that fit (about 250 sites at 20 km radius and 30 m,
# some 450,000 sweep threads: more than a GPU holds at once).
BATCH_BYTES = 4 << 30
THREADS_PER_BLOCK = 128  # on a device
SIMULATOR_THREADS_PER_BLOCK = 16  # the simulator runs each thread of a block as a Python thread


@dataclass(frozen=True)
class Antenna:
    """A site of `site_path_losses`: the arguments of `coverage.site_path_loss`."""

    x_m: float
    y_m: float
    height_m: float  # above ground
    freqs_mhz: tuple[float, ...]
    ground_elevation_m: float | None = None  # None: the DEM cell's


@dataclass(frozen=True)
class Observer:
    """An observer of `line_of_sight_masks`: position and height above ground."""

    x_m: float
    y_m: float
    height_m: float


# --------------------------------------------------------------------------- which kernels


@functools.cache
def _numba_cuda() -> ModuleType | None:
    """numba.cuda (the simulator when NUMBA_ENABLE_CUDASIM=1), or None if not installed."""
    try:
        from numba import cuda
    except ImportError:
        return None
    return cuda


def simulator_active() -> bool:
    """Whether numba.cuda is numba-cuda's simulator (CUDA kernels run as Python)."""
    cuda = _numba_cuda()
    return cuda is not None and "simulator" in cuda.is_available.__module__


@functools.cache
def device_present() -> bool:
    """Whether a real CUDA device is usable (never the simulator, which says it is)."""
    cuda = _numba_cuda()
    return cuda is not None and not simulator_active() and bool(cuda.is_available())


def kernel_backend(backend: str) -> Literal["cpu", "gpu"]:
    """The kernels a `backend` runs; "gpu" without a device or the simulator is an error."""
    if backend not in BACKENDS:
        raise ValidationError(
            f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}",
            details=[{"field": "backend", "reason": "unknown backend"}],
        )
    if backend == "auto":
        return "gpu" if device_present() else "cpu"
    if backend == "gpu":
        _cuda()
        return "gpu"
    return "cpu"


def _cuda() -> ModuleType:
    """numba.cuda with a device (or the simulator) behind it; ServiceUnavailable otherwise."""
    cuda = _numba_cuda()
    if cuda is None:
        raise ServiceUnavailable(
            "backend 'gpu' needs numba-cuda: pip install 'lai-chau-registry[gpu]'"
        )
    if not (device_present() or simulator_active()):
        raise ServiceUnavailable(
            "backend 'gpu' needs a CUDA device and none is usable "
            f"({cuda.cuda_error() or 'no device found'}); use backend 'cpu' or 'auto'"
        )
    return cuda


def _threads_per_block() -> int:
    return SIMULATOR_THREADS_PER_BLOCK if simulator_active() else THREADS_PER_BLOCK


def _blocks(threads: int, per_block: int) -> int:
    return max(1, -(-threads // per_block))


# --------------------------------------------------------------------------- batches


def _batches(count: int, bytes_per_site: int) -> list[range]:
    size = max(1, BATCH_BYTES // max(bytes_per_site, 1))
    return [range(i, min(i + size, count)) for i in range(0, count, size)]


@dataclass(frozen=True)
class _Batch:
    """Sites of one launch: their windows stacked on the host, lattices, antenna elevations."""

    wins: np.ndarray  # float32 [B, 2n + 1, 2n + 1]
    lattices: list[Window]
    z_tx: np.ndarray  # float64 [B]


def _read_batch(
    dem: DemSource,
    sites: Sequence[tuple[float, float, float, float | None]],
    radius_m: float,
    step: int,
) -> _Batch:
    """The windows of sites (x, y, antenna height, ground elevation or None), read in place."""
    size = 2 * window(dem, 0, 0, radius_m, step).n + 1  # the same for every site
    wins = np.empty((len(sites), size, size), dtype=np.float32)
    z_tx = np.empty(len(sites))
    lattices = []
    for b, (x_m, y_m, height_m, ground_m) in enumerate(sites):
        w, wins[b], z_tx[b] = site_window(dem, x_m, y_m, height_m, ground_m, radius_m, step)
        lattices.append(w)
    return _Batch(wins, lattices, z_tx)


def _offset_max_table(n: int, d_row: float, d_col: float, r_max: float) -> np.ndarray:
    """`los_grid`'s column reach of each row offset 0..n of a window (-1: none)."""
    r_max2 = r_max * r_max
    return np.array([_kernels._offset_max(t, d_row, d_col, r_max2, n) for t in range(n + 1)])


def _los_on_device(
    cuda: ModuleType,
    wins: Any,
    z_tx: np.ndarray,
    *,
    d_row: float,
    d_col: float,
    target_height_m: float,
    inv_2kr: float,
    r_max: float,
) -> Any:
    """Line-of-sight masks of the windows on the device (bool, like the windows)."""
    from registry.radio import _cuda_kernels as kernels

    count, size = wins.shape[0], wins.shape[1]
    tpb = _threads_per_block()
    mask = cuda.device_array(wins.shape, dtype=np.bool_)
    flat = mask.reshape(mask.size)
    kernels.fill[_blocks(flat.size, tpb), tpb](flat, False)
    state = cuda.device_array(wins.shape, dtype=np.float32)
    args = (
        wins,
        cuda.to_device(z_tx),
        cuda.to_device(_offset_max_table((size - 1) // 2, d_row, d_col, r_max)),
        np.float64(d_row),
        np.float64(d_col),
        np.float64(target_height_m),
        np.float64(inv_2kr),
        mask,
        state,
    )
    kernels.los_origin[_blocks(count, tpb), tpb](*args)
    kernels.los_axial[2 * count, tpb](*args)
    kernels.los_lateral[2 * count, tpb](*args)
    return mask


def _capacity(n: int) -> int:
    """Thread-local hull capacity for half-width n: a power of two >= n + 1 (few compiles)."""
    return 1 << max(5, math.ceil(math.log2(n + 1)))


def site_path_losses(
    dem: DemSource, antennas: Sequence[Antenna], params: CoverageParams | None = None
) -> list[SiteLoss]:
    """Basic transmission loss of each antenna, as `coverage.site_path_loss` gives it.

    Parameters
    ----------
    dem : Dem or DemFile
        Only each site's window within the radius is read.
    antennas : sequence of Antenna
        Sites, batched by `BATCH_BYTES` of device memory (one launch per batch).
    params : CoverageParams, optional
        Model, radius, analysis step and constants.

    Returns
    -------
    list of SiteLoss
        In the order of `antennas`; the same keys, lattices and (within 0.1 dB) losses as
        `site_path_loss`, which computes them for the models without CUDA kernels
        (`GPU_MODELS`).
    """
    cuda = _cuda()
    p = params or CoverageParams()
    if p.model not in GPU_MODELS:
        return [
            site_path_loss(
                dem,
                a.x_m,
                a.y_m,
                antenna_height_m=a.height_m,
                freqs_mhz=a.freqs_mhz,
                ground_elevation_m=a.ground_elevation_m,
                params=p,
            )
            for a in antennas
        ]
    if not antennas:
        return []
    n = window(dem, 0, 0, p.max_radius_m, p.analysis_step).n
    lattice = 2 * n // p.analysis_step + 1
    n_f = max(len(a.freqs_mhz) for a in antennas)
    per_site = (2 * n + 1) ** 2 * (4 + 4 + 1) + n_f * lattice * lattice * 4
    losses: list[SiteLoss] = []
    for batch in _batches(len(antennas), per_site):
        losses += _loss_batch(cuda, dem, [antennas[i] for i in batch], p)
    return losses


def _loss_batch(
    cuda: ModuleType, dem: DemSource, antennas: list[Antenna], p: CoverageParams
) -> list[SiteLoss]:
    """`site_path_losses` of one batch: one launch of the model's kernels."""
    from registry.radio import _cuda_kernels as kernels

    step = p.analysis_step
    sites = [(a.x_m, a.y_m, a.height_m, a.ground_elevation_m) for a in antennas]
    batch = _read_batch(dem, sites, p.max_radius_m, step)
    count, n = len(antennas), batch.lattices[0].n
    dx, dy = dem.cell_size
    inv_2kr = bulge_factor(p.k_factor, p.earth_radius_m)
    rx_h = p.radio.ue_height_m
    f_mhz = [[float(f) for f in a.freqs_mhz] for a in antennas]
    n_f = max(len(f) for f in f_mhz)
    freqs = np.array([f + f[:1] * (n_f - len(f)) for f in f_mhz])  # padded rows: never read
    nfs = cuda.to_device(np.array([len(f) for f in f_mhz]))
    wins = cuda.to_device(batch.wins)
    phases = cuda.to_device(np.array([(w.phase_r, w.phase_c) for w in batch.lattices]))
    lattice = 2 * n // step + 1
    out = cuda.device_array((count, n_f, lattice, lattice), dtype=np.float32)
    tpb = _threads_per_block()
    flat = out.reshape(out.size)
    kernels.fill[_blocks(flat.size, tpb), tpb](flat, np.float32(math.nan))
    if p.model == "deygout":
        isl = 1.0 / np.sqrt(SPEED_OF_LIGHT_M_S / (freqs * 1e6))  # 1 / sqrt(lambda)
        fspl_1m = np.vectorize(lambda f: free_space_loss_db(1.0, f))(freqs)
        kernels.deygout_kernel(_capacity(n))[_blocks(count * 4 * lattice, tpb), tpb](
            wins,
            step,
            phases,
            np.float64(dy),
            np.float64(dx),
            cuda.to_device(batch.z_tx),
            np.float64(rx_h),
            np.float64(inv_2kr),
            np.float64(p.max_radius_m),
            cuda.to_device(isl),
            cuda.to_device(fspl_1m),
            cuda.to_device(freqs),
            nfs,
            out,
        )
    else:
        use_rma = p.model == "rma"
        los = (
            _los_on_device(
                cuda,
                wins,
                batch.z_tx,
                d_row=dy,
                d_col=dx,
                target_height_m=rx_h,
                inv_2kr=inv_2kr,
                r_max=p.max_radius_m,
            )
            if use_rma
            else cuda.device_array((1, 1, 1), dtype=np.bool_)  # not read by Hata
        )
        kernels.empirical_kernel[_blocks(count * lattice * lattice, tpb), tpb](
            wins,
            step,
            phases,
            np.float64(dy),
            np.float64(dx),
            np.float64(p.max_radius_m),
            los,
            use_rma,
            cuda.to_device(freqs),
            nfs,
            cuda.to_device(np.array([a.height_m for a in antennas], dtype=np.float64)),
            np.float64(rx_h),
            np.float64(p.rma_building_height_m),
            np.float64(p.rma_street_width_m),
            np.float64(p.hata_c_db),
            out,
        )
    host = out.copy_to_host()
    losses = []
    for b, (a, f, w) in enumerate(zip(antennas, f_mhz, batch.lattices, strict=True)):
        key = loss_key(dem, a.x_m, a.y_m, a.ground_elevation_m, a.height_m, f, p)
        loss = np.ascontiguousarray(host[b, : len(f), : w.shape[0], : w.shape[1]])
        losses.append(SiteLoss(key, tuple(f), w.row0, w.col0, loss, float(batch.z_tx[b])))
    return losses


def line_of_sight_masks(
    dem: DemSource,
    observers: Sequence[Observer],
    *,
    target_height_m: float,
    max_distance_m: float,
    k_factor: float = K_FACTOR,
    earth_radius_m: float = EARTH_RADIUS_M,
) -> list[tuple[np.ndarray, Affine]]:
    """Line-of-sight mask of each observer, as `coverage.line_of_sight` gives it.

    Returns
    -------
    list of (mask, transform)
        In the order of `observers`: bool, True where visible, over the square window
        around the observer clipped to the DEM, and its transform.
    """
    cuda = _cuda()
    size = 2 * window(dem, 0, 0, max_distance_m, 1).n + 1
    dx, dy = dem.cell_size
    masks: list[tuple[np.ndarray, Affine]] = []
    for part in _batches(len(observers), size * size * (4 + 4 + 1)):
        sites = [(o.x_m, o.y_m, o.height_m, None) for o in (observers[i] for i in part)]
        batch = _read_batch(dem, sites, max_distance_m, 1)
        mask = _los_on_device(
            cuda,
            cuda.to_device(batch.wins),
            batch.z_tx,
            d_row=dy,
            d_col=dx,
            target_height_m=target_height_m,
            inv_2kr=bulge_factor(k_factor, earth_radius_m),
            r_max=max_distance_m,
        ).copy_to_host()
        for b, w in enumerate(batch.lattices):
            r_lo, c_lo = max(w.row0, 0), max(w.col0, 0)
            r_hi = min(w.row0 + size, dem.shape[0])
            c_hi = min(w.col0 + size, dem.shape[1])
            crop = mask[b, r_lo - w.row0 : r_hi - w.row0, c_lo - w.col0 : c_hi - w.col0]
            masks.append(
                (np.ascontiguousarray(crop), dem.transform @ Affine.translation(c_lo, r_lo))
            )
    return masks
