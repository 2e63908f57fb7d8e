"""Coverage of a set of sectors over a DEM.

Pipeline
--------
1. Sectors are grouped by antenna position and height ("site groups"). Each
   group's basic transmission loss is computed once for all its frequencies
   by a radial sweep over a square window of the DEM around the site (radius
   `CoverageParams.max_radius_m`; see `registry.radio._kernels` for the sweep
   and how it relates to the exact Deygout method; RMa takes its LOS/NLOS
   from the propagation of `line_of_sight`). Losses are cached on disk by
   the hash of their inputs (DEM fingerprint, antenna position and height,
   frequencies, loss parameters), so an unchanged site is never recomputed.
   (`point_path_loss` gives the loss at a few cells only, each on its own
   straight profile: siting's demand points.)
2. Each sector's pattern (TR 36.814) and power per resource element turn the
   loss into RSRP; the mosaic keeps, per cell, the best server (strongest
   RSRP) and the received power summed per frequency, tile by tile.
3. Per cell: DL SINR = best / (load x co-channel others + noise per RE),
   uplink rate to the best server (TR 36.942 Annex A mapping at the
   configured location reliability) and the service class.

Analysis grid: `CoverageParams.analysis_step` = s (odd) evaluates every s-th
DEM cell in each direction (cell centres coincide with DEM cell centres;
grid transform = DEM transform scaled by s), while profiles are still
sampled at the DEM resolution. s = 1 is the DEM grid itself.

Sites are placed at the centre of the DEM cell containing them (at most half
a cell away) for the path loss; bearings and elevation angles for the
antenna pattern use the exact position. The ground elevation of a site is
the DEM value of that cell unless given.

Outputs are arrays on the analysis grid; `write_coverage_geotiffs` writes
them as cloud-optimised GeoTIFFs. `compute_coverage_to_geotiffs` streams them
to disk tile by tile instead, with the losses left in the disk cache and the
DEM possibly a `DemFile` read window by window, so memory stays bounded
whatever the area. Site and tile tasks run on an executor
(`registry.radio.executors`): a thread pool, or a Dask cluster; each tile's
cells depend only on the site groups in their fixed order, so the results are
the same whichever runs them, in whatever order. The radio-side uplink rate here is not yet
capped by backhaul; that is the job of the analysis stage.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from registry.radio import _kernels, _p1812_kernels
from registry.radio.executors import Executor, ThreadExecutor
from registry.radio.linkbudget import (
    SERVICE_CLASS_NODATA,
    SERVICE_CLASSES,
    RadioParams,
    ServiceClassThresholds,
    Technology,
    UplinkParams,
    noise_power_dbm,
    power_per_re_dbm,
    resource_blocks,
    service_class_codes,
    subcarrier_spacing_khz,
    uplink_budget,
    uplink_rate_mbps,
)
from registry.terrain import EARTH_RADIUS_M, K_FACTOR, Dem, DemSource

logger = logging.getLogger(__name__)

Model = Literal["deygout", "rma", "hata", "p1812"]
Progress = Callable[[int, int], None]
Tile = tuple[int, int, int, int]  # (row0, col0, row1, col1) in analysis cells, end exclusive

TILE_SIZE = 128  # mosaic tile side in analysis cells (unit of parallel work and of updates)
# Site losses a process keeps while mosaicking from the disk cache: more than one tile needs
# (a few hundred at rural density), so neighbouring tiles reuse them; about 0.8 MB each at the
# defaults (20 km radius, analysis step 3, one frequency).
LOSS_LRU_SIZE = 512
NO_SERVER = -1  # best_server value where no sector reaches
_LOSS_VERSION = 2  # part of every loss cache key: bump when the loss computation changes


@dataclass(frozen=True)
class SectorSpec:
    """One cell (sector) of a site, in the DEM CRS."""

    site_code: str
    sector_code: str
    x_m: float
    y_m: float
    ground_elevation_m: float | None  # None: take it from the DEM
    height_m: float  # antenna height above ground
    technology: Technology
    freq_mhz: float
    bandwidth_mhz: float
    azimuth_deg: float
    mech_tilt_deg: float
    elec_tilt_deg: float
    h_beamwidth_deg: float
    v_beamwidth_deg: float
    gain_dbi: float
    tx_power_dbm: float  # total transmit power of the carrier
    site_active: bool = True


@dataclass(frozen=True)
class CoverageParams:
    """Model choice and every coverage constant (see the linked dataclasses for the rest)."""

    max_radius_m: float = 20_000.0  # path loss computed up to this distance from each site
    model: Model = "deygout"  # free space + Deygout | TR 38.901 RMa | COST-231 Hata | P.1812
    clutter_margin_db: float = 0.0  # extra loss for foliage/clutter, all cells
    analysis_step: int = 1  # odd; evaluate every n-th DEM cell (profiles stay at DEM resolution)
    k_factor: float = K_FACTOR  # effective earth-radius factor, ITU-R P.453
    earth_radius_m: float = EARTH_RADIUS_M
    rma_building_height_m: float = 5.0  # h, TR 38.901 Table 7.4.1-1
    rma_street_width_m: float = 20.0  # W, TR 38.901 Table 7.4.1-1
    hata_c_db: float = 0.0  # COST-231 area correction (0 = medium city / suburban)
    radio: RadioParams = field(default_factory=RadioParams)
    uplink: UplinkParams = field(default_factory=UplinkParams)
    thresholds: ServiceClassThresholds = field(default_factory=ServiceClassThresholds)

    def __post_init__(self) -> None:
        if self.model not in ("deygout", "rma", "hata", "p1812"):
            raise ValueError(f"unknown model {self.model!r}")
        if self.analysis_step < 1 or self.analysis_step % 2 == 0:
            raise ValueError("analysis_step must be an odd integer >= 1")
        if self.max_radius_m <= 0:
            raise ValueError("max_radius_m must be positive")


@dataclass(frozen=True, eq=False)
class SiteLoss:
    """Basic transmission loss of one antenna position on the analysis grid.

    Attributes
    ----------
    key : str
        Hash of every input of the loss (the cache key).
    freqs_mhz : tuple of float
        Frequencies, in the order of `loss_db`'s first axis.
    row0, col0 : int
        Analysis-grid cell of ``loss_db[:, 0, 0]`` (may be outside the grid).
    loss_db : numpy.ndarray
        float32 (frequencies, rows, cols); NaN beyond the radius or without terrain.
    z_tx_m : float
        Absolute antenna elevation used, metres.
    """

    key: str
    freqs_mhz: tuple[float, ...]
    row0: int
    col0: int
    loss_db: np.ndarray
    z_tx_m: float

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """(row0, col0, row1, col1) in analysis-grid cells, end exclusive."""
        return (
            self.row0,
            self.col0,
            self.row0 + self.loss_db.shape[1],
            self.col0 + self.loss_db.shape[2],
        )


@dataclass(frozen=True, eq=False)
class CoverageResult:
    """Coverage mosaics on the analysis grid.

    Attributes
    ----------
    best_server : numpy.ndarray
        int32 index into `sectors`, `NO_SERVER` (-1) where none reaches.
    rsrp_dbm, sinr_db : numpy.ndarray
        float32 RSRP of the best server and DL SINR; NaN where none reaches.
    ul_rate_mbps : numpy.ndarray
        float32 sustained uplink rate to the best server (0 where none).
    service_class : numpy.ndarray
        uint8 code, an index into `SERVICE_CLASSES`; `SERVICE_CLASS_NODATA`
        (255) where the DEM has no data.
    site_losses : mapping
        The path loss of each site group by its key.
    n_computed, n_cached : int
        Site groups whose loss was computed, and reused (disk or previous result).
    """

    dem: DemSource
    params: CoverageParams
    sectors: tuple[SectorSpec, ...]
    transform: Affine
    crs: CRS
    best_server: np.ndarray
    rsrp_dbm: np.ndarray
    sinr_db: np.ndarray
    ul_rate_mbps: np.ndarray
    service_class: np.ndarray
    site_losses: Mapping[str, SiteLoss]
    n_computed: int
    n_cached: int


@dataclass(frozen=True)
class PointValues:
    """All coverage values of the analysis cell containing a point."""

    site_code: str | None
    sector_code: str | None
    rsrp_dbm: float
    sinr_db: float
    ul_rate_mbps: float
    service_class: str


@dataclass(frozen=True)
class _SiteGroup:
    """Active sectors sharing an antenna position and height."""

    x_m: float
    y_m: float
    ground_elevation_m: float | None
    height_m: float
    freqs_mhz: tuple[float, ...]
    sector_indices: tuple[int, ...]
    loss_key: str
    signature: str  # loss key + the group's sector specs: changes when its RSRP changes


@dataclass(frozen=True)
class _SectorTable:
    """Per-sector constants as arrays, indexed like `CoverageResult.sectors`."""

    slot: np.ndarray  # frequency slot for interference sums
    pre_dbm: np.ndarray  # power per resource element
    dl_noise_dbm: np.ndarray  # UE noise per resource element
    ul_power_dbm: np.ndarray
    ul_noise_dbm: np.ndarray
    ul_bandwidth_hz: np.ndarray
    ul_time_fraction: np.ndarray
    n_slots: int


# --------------------------------------------------------------------------- sweeps


def _analysis_shape(dem: DemSource, step: int) -> tuple[int, int]:
    return dem.shape[0] // step, dem.shape[1] // step


def _site_cell(dem: DemSource, x_m: float, y_m: float) -> tuple[int, int]:
    row, col = dem.cell_index(x_m, y_m)
    r, c = math.floor(float(row) + 0.5), math.floor(float(col) + 0.5)
    if not (0 <= r < dem.shape[0] and 0 <= c < dem.shape[1]):
        raise ValueError(f"point ({x_m}, {y_m}) is outside the DEM")
    return r, c


@dataclass(frozen=True)
class _Window:
    """Square DEM window of half-width n around a site cell, and its analysis lattice."""

    n: int
    phase_r: int  # first window row/column on the lattice
    phase_c: int
    row0: int  # analysis cell of the lattice's first row/column
    col0: int
    shape: tuple[int, int]  # lattice cells in the window

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        return self.row0, self.col0, self.row0 + self.shape[0], self.col0 + self.shape[1]


def _window(dem: DemSource, r: int, c: int, radius_m: float, step: int) -> _Window:
    n = step * math.ceil(math.ceil(radius_m / min(dem.cell_size)) / step)
    half = step // 2
    phase_r = (half - (r - n)) % step
    phase_c = (half - (c - n)) % step
    return _Window(
        n,
        phase_r,
        phase_c,
        (r - n + phase_r - half) // step,
        (c - n + phase_c - half) // step,
        ((2 * n - phase_r) // step + 1, (2 * n - phase_c) // step + 1),
    )


def _inv_2kr(k_factor: float, earth_radius_m: float) -> float:
    return 1.0 / (2.0 * k_factor * earth_radius_m)


def line_of_sight(
    dem: Dem,
    x_m: float,
    y_m: float,
    *,
    observer_height_m: float,
    target_height_m: float,
    max_distance_m: float,
    k_factor: float = K_FACTOR,
    earth_radius_m: float = EARTH_RADIUS_M,
) -> tuple[np.ndarray, Affine]:
    """Line-of-sight mask from an observer, by neighbour propagation (GDAL's scheme).

    The observer stands at the centre of the DEM cell containing (x, y), at
    that cell's elevation + `observer_height_m`; a cell is visible when its
    centre, raised by `target_height_m`, is not below the horizon interpolated
    from its two neighbours nearer the observer (see `registry.radio._kernels`).
    Earth curvature uses the effective radius k R (the equivalent GDAL
    curvature coefficient is 1/k).

    Parameters
    ----------
    dem : Dem
    x_m, y_m : float
        Observer position in the DEM CRS.
    observer_height_m, target_height_m : float
        Heights above ground, metres.
    max_distance_m : float
        Radius of the analysis.
    k_factor, earth_radius_m : float
        Effective earth-radius factor and earth radius.

    Returns
    -------
    mask : numpy.ndarray
        bool, True where visible; False beyond the radius or without terrain.
        Covers the square window around the observer, clipped to the DEM.
    transform : affine.Affine
        Transform of `mask`.
    """
    r, c = _site_cell(dem, x_m, y_m)
    if not math.isfinite(dem.elevation_m[r, c]):
        raise ValueError(f"no ground elevation at ({x_m}, {y_m})")
    n = _window(dem, r, c, max_distance_m, 1).n
    r_lo, c_lo = max(r - n, 0), max(c - n, 0)
    r_hi, c_hi = min(r + n + 1, dem.shape[0]), min(c + n + 1, dem.shape[1])
    mask = np.zeros((r_hi - r_lo, c_hi - c_lo), dtype=np.bool_)
    dx, dy = dem.cell_size
    _kernels.los_grid(
        dem.elevation_m,
        r,
        c,
        dy,
        dx,
        float(dem.elevation_m[r, c]) + observer_height_m,
        target_height_m,
        _inv_2kr(k_factor, earth_radius_m),
        max_distance_m,
        mask,
        r_lo,
        c_lo,
    )
    return mask, dem.transform @ Affine.translation(c_lo, r_lo)


def _loss_key(
    dem: DemSource,
    x_m: float,
    y_m: float,
    ground_elevation_m: float | None,
    height_m: float,
    freqs_mhz: Sequence[float],
    params: CoverageParams,
) -> str:
    inputs = {
        "dem": dem.fingerprint,
        "x": x_m,
        "y": y_m,
        "ground": ground_elevation_m,
        "height": height_m,
        "freqs": list(freqs_mhz),
        "model": params.model,
        "radius": params.max_radius_m,
        "step": params.analysis_step,
        "k": params.k_factor,
        "earth_radius": params.earth_radius_m,
        "rma_h": params.rma_building_height_m,
        "rma_w": params.rma_street_width_m,
        "hata_c": params.hata_c_db,
        "rx_height": params.radio.ue_height_m,
        "version": _LOSS_VERSION,
    }
    return hashlib.blake2b(json.dumps(inputs, sort_keys=True).encode(), digest_size=16).hexdigest()


def site_path_loss(
    dem: DemSource,
    x_m: float,
    y_m: float,
    *,
    antenna_height_m: float,
    freqs_mhz: Sequence[float],
    ground_elevation_m: float | None = None,
    params: CoverageParams | None = None,
) -> SiteLoss:
    """Basic transmission loss from one antenna to every analysis cell within the radius.

    Parameters
    ----------
    dem : Dem or DemFile
        Only the square window within the radius is read.
    x_m, y_m : float
        Antenna position in the DEM CRS.
    antenna_height_m : float
        Height above ground, metres.
    freqs_mhz : sequence of float
        Frequencies, MHz.
    ground_elevation_m : float, optional
        Ground elevation at the antenna; default the DEM cell's.
    params : CoverageParams, optional
        Model, radius, analysis step and constants.

    Returns
    -------
    SiteLoss
        Loss in dB: free space + Deygout ("deygout"), TR 38.901 RMa with LOS
        from the sweep ("rma"), or COST-231 Hata ("hata"); clutter is not included.
    """
    p = params or CoverageParams()
    step = p.analysis_step
    r, c = _site_cell(dem, x_m, y_m)
    w = _window(dem, r, c, p.max_radius_m, step)
    win = dem.read(r - w.n, c - w.n, 2 * w.n + 1, 2 * w.n + 1)
    ground = float(win[w.n, w.n]) if ground_elevation_m is None else ground_elevation_m
    if not math.isfinite(ground):
        raise ValueError(f"no ground elevation at ({x_m}, {y_m})")
    z_tx = ground + antenna_height_m
    freqs = np.asarray(freqs_mhz, dtype=np.float64)
    dx, dy = dem.cell_size
    inv_2kr = _inv_2kr(p.k_factor, p.earth_radius_m)
    rx_h = p.radio.ue_height_m
    out = np.full((freqs.size, *w.shape), np.nan, dtype=np.float32)
    if p.model in ("deygout", "p1812"):  # same signature; P.1812-8 at p = pL = 50 %
        sweep = _kernels.deygout_sweep if p.model == "deygout" else _p1812_kernels.p1812_sweep
        sweep(
            win,
            w.n,
            step,
            w.phase_r,
            w.phase_c,
            dy,
            dx,
            z_tx,
            rx_h,
            inv_2kr,
            p.max_radius_m,
            freqs,
            out,
        )
    else:
        los = np.zeros(w.shape, dtype=np.bool_)
        if p.model == "rma":
            full = np.zeros(win.shape, dtype=np.bool_)
            _kernels.los_grid(
                win, w.n, w.n, dy, dx, z_tx, rx_h, inv_2kr, p.max_radius_m, full, 0, 0
            )
            los = np.ascontiguousarray(full[w.phase_r :: step, w.phase_c :: step])
        _kernels.empirical_sweep(
            win,
            w.n,
            step,
            w.phase_r,
            w.phase_c,
            dy,
            dx,
            p.max_radius_m,
            los,
            p.model == "rma",
            freqs,
            antenna_height_m,
            rx_h,
            p.rma_building_height_m,
            p.rma_street_width_m,
            p.hata_c_db,
            out,
        )
    key = _loss_key(dem, x_m, y_m, ground_elevation_m, antenna_height_m, list(freqs), p)
    return SiteLoss(key, tuple(float(f) for f in freqs), w.row0, w.col0, out, z_tx)


def point_path_loss(
    dem: Dem,
    x_m: float,
    y_m: float,
    *,
    antenna_height_m: float,
    freq_mhz: float,
    rows: np.ndarray,
    cols: np.ndarray,
    ground_elevation_m: float | None = None,
    params: CoverageParams | None = None,
) -> np.ndarray:
    """Basic transmission loss from one antenna to a few analysis cells (one frequency).

    With the "deygout" model each cell gets the exact Deygout of its own straight
    profile from the site to the cell centre (`registry.radio._kernels.point_losses`),
    O(distance) per cell instead of a whole window: the same model as `site_path_loss`,
    but on the straight line rather than on the sweep's nearest ray, so values can
    differ where the two profiles cross ridges differently. Other models read the
    `site_path_loss` window (cheap for them).

    Parameters
    ----------
    dem, x_m, y_m, antenna_height_m, ground_elevation_m, params
        As in `site_path_loss`.
    freq_mhz : float
        Frequency, MHz.
    rows, cols : numpy.ndarray
        Analysis-grid cells (integers, on the grid).

    Returns
    -------
    numpy.ndarray
        float64 loss in dB per cell; NaN beyond the radius or without terrain.
    """
    p = params or CoverageParams()
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if p.model != "deygout":
        loss = site_path_loss(
            dem,
            x_m,
            y_m,
            antenna_height_m=antenna_height_m,
            freqs_mhz=(freq_mhz,),
            ground_elevation_m=ground_elevation_m,
            params=p,
        )
        lr, lc = rows - loss.row0, cols - loss.col0
        h, w = loss.loss_db.shape[1:]
        inside = (lr >= 0) & (lr < h) & (lc >= 0) & (lc < w)
        out = np.full(rows.size, np.nan)
        out[inside] = loss.loss_db[0, lr[inside], lc[inside]]
        return out
    r, c = _site_cell(dem, x_m, y_m)
    ground = float(dem.elevation_m[r, c]) if ground_elevation_m is None else ground_elevation_m
    if not math.isfinite(ground):
        raise ValueError(f"no ground elevation at ({x_m}, {y_m})")
    half = p.analysis_step // 2
    out = np.empty(rows.size)
    dx, dy = dem.cell_size
    _kernels.point_losses(
        dem.elevation_m,
        r,
        c,
        half + rows * p.analysis_step,
        half + cols * p.analysis_step,
        dy,
        dx,
        ground + antenna_height_m,
        p.radio.ue_height_m,
        _inv_2kr(p.k_factor, p.earth_radius_m),
        p.max_radius_m,
        float(freq_mhz),
        out,
    )
    return out


# --------------------------------------------------------------------------- grouping & cache


def _sector_signature(sector: SectorSpec) -> str:
    return repr(sector)  # a frozen dataclass of plain values: its repr names every field


def _group_sectors(
    dem: DemSource, sectors: Sequence[SectorSpec], params: CoverageParams
) -> list[_SiteGroup]:
    by_antenna: dict[tuple, list[int]] = {}
    for i, s in enumerate(sectors):
        if s.site_active:
            by_antenna.setdefault((s.x_m, s.y_m, s.ground_elevation_m, s.height_m), []).append(i)
    groups = []
    for (x, y, ground, height), idx in by_antenna.items():
        freqs = tuple(sorted({sectors[i].freq_mhz for i in idx}))
        key = _loss_key(dem, x, y, ground, height, freqs, params)
        signature = hashlib.blake2b(
            (key + "".join(_sector_signature(sectors[i]) for i in idx)).encode(), digest_size=16
        ).hexdigest()
        groups.append(_SiteGroup(x, y, ground, height, freqs, tuple(idx), key, signature))
    return groups


def _group_bounds(dem: DemSource, g: _SiteGroup, params: CoverageParams) -> Tile:
    """Analysis-grid bounds of a group's loss window (without computing it)."""
    r, c = _site_cell(dem, g.x_m, g.y_m)
    return _window(dem, r, c, params.max_radius_m, params.analysis_step).bounds


def _cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"site-loss-{key}.npz"


def _load_cached(cache_dir: Path | None, key: str) -> SiteLoss | None:
    if cache_dir is None:
        return None
    path = _cache_path(cache_dir, key)
    if not path.exists():
        return None
    with np.load(path) as data:
        return SiteLoss(
            key,
            tuple(data["freqs_mhz"].tolist()),
            int(data["origin"][0]),
            int(data["origin"][1]),
            data["loss_db"],
            float(data["z_tx_m"]),
        )


def _store_cached(cache_dir: Path | None, loss: SiteLoss) -> None:
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        np.savez(
            fh,
            loss_db=loss.loss_db,
            freqs_mhz=np.asarray(loss.freqs_mhz),
            origin=np.array([loss.row0, loss.col0]),
            z_tx_m=np.float64(loss.z_tx_m),
        )
    os.replace(tmp, _cache_path(cache_dir, loss.key))  # atomic: readers never see half a file


_cached_loss = functools.lru_cache(maxsize=LOSS_LRU_SIZE)(_load_cached)  # per process


@dataclass(frozen=True)
class _LossJob:
    """What every loss task shares (sent to each Dask worker once)."""

    dem: DemSource
    params: CoverageParams
    cache_dir: Path | None
    keep: bool  # return the loss itself, or only its key (the loss stays in the disk cache)


def _loss_task(job: _LossJob, g: _SiteGroup) -> SiteLoss | str:
    loss = site_path_loss(
        job.dem,
        g.x_m,
        g.y_m,
        antenna_height_m=g.height_m,
        freqs_mhz=g.freqs_mhz,
        ground_elevation_m=g.ground_elevation_m,
        params=job.params,
    )
    _store_cached(job.cache_dir, loss)
    return loss if job.keep else loss.key


def _resolve_losses(
    dem: DemSource,
    groups: Sequence[_SiteGroup],
    params: CoverageParams,
    known: Mapping[str, SiteLoss],
    cache_dir: Path | None,
    executor: Executor,
    tick: Callable[[], None],
    *,
    keep: bool = True,
) -> tuple[dict[str, SiteLoss], int]:
    """Loss of every group: from `known`, the disk cache, or computed (in parallel).

    With ``keep`` False (a cache directory is then required) losses stay on disk: cached
    ones are only checked for, computed ones are not sent back, and the mapping returned is
    empty. That bounds memory whatever the number of sites.
    """
    losses: dict[str, SiteLoss] = {}

    def found(key: str) -> bool:
        if not keep:
            return _cache_path(cache_dir, key).exists()  # type: ignore[arg-type]
        hit = known.get(key) or _load_cached(cache_dir, key)
        if hit is not None:
            losses[key] = hit
        return hit is not None

    todo: dict[str, _SiteGroup] = {}
    for g in groups:
        if found(g.loss_key):
            tick()
        else:
            todo.setdefault(g.loss_key, g)
    job = _LossJob(dem, params, cache_dir, keep)
    for loss in executor.map_unordered(_loss_task, job, list(todo.values())):
        if isinstance(loss, SiteLoss):
            losses[loss.key] = loss
        tick()
    return losses, len(todo)


# --------------------------------------------------------------------------- mosaic


def _sector_table(sectors: Sequence[SectorSpec], params: CoverageParams) -> _SectorTable:
    radio, uplink = params.radio, params.uplink
    slots = {f: i for i, f in enumerate(sorted({s.freq_mhz for s in sectors}))}
    rows = []
    for s in sectors:
        scs = subcarrier_spacing_khz(s.technology, radio)
        budget = uplink_budget(s.technology, s.bandwidth_mhz, radio, uplink)
        rows.append(
            (
                slots[s.freq_mhz],
                power_per_re_dbm(
                    s.tx_power_dbm, resource_blocks(s.technology, s.bandwidth_mhz, scs)
                ),
                float(
                    noise_power_dbm(scs * 1e3, radio.ue_noise_figure_db, radio.thermal_noise_dbm_hz)
                ),
                budget.ue_power_dbm,
                budget.noise_dbm,
                budget.bandwidth_hz,
                budget.time_fraction,
            )
        )
    cols = list(zip(*rows, strict=True)) if rows else [()] * 7
    return _SectorTable(
        np.asarray(cols[0], dtype=np.int64),
        *(np.asarray(c, dtype=np.float64) for c in cols[1:]),
        n_slots=max(len(slots), 1),
    )


def _tiles(shape: tuple[int, int]) -> list[Tile]:
    return [
        (r, c, min(r + TILE_SIZE, shape[0]), min(c + TILE_SIZE, shape[1]))
        for r in range(0, shape[0], TILE_SIZE)
        for c in range(0, shape[1], TILE_SIZE)
    ]


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass(frozen=True)
class _MosaicInputs:
    """What every tile task shares (sent to each Dask worker once)."""

    dem: DemSource
    params: CoverageParams
    sectors: tuple[SectorSpec, ...]
    groups: tuple[_SiteGroup, ...]
    bounds: np.ndarray  # int64 (groups, 4): each group's loss window, analysis cells
    table: _SectorTable
    transform: Affine  # of the analysis grid
    losses: Mapping[str, SiteLoss] | None  # None: read them from the disk cache
    cache_dir: Path | None

    @classmethod
    def build(
        cls,
        dem: DemSource,
        params: CoverageParams,
        sectors: tuple[SectorSpec, ...],
        groups: Sequence[_SiteGroup],
        transform: Affine,
        losses: Mapping[str, SiteLoss] | None,
        cache_dir: Path | None,
    ) -> _MosaicInputs:
        bounds = np.array([_group_bounds(dem, g, params) for g in groups], dtype=np.int64)
        return cls(
            dem,
            params,
            sectors,
            tuple(groups),
            bounds.reshape(len(groups), 4),
            _sector_table(sectors, params),
            transform,
            losses,
            cache_dir,
        )

    def loss(self, key: str) -> SiteLoss:
        """A group's loss: in memory, or from the disk cache through this process's LRU."""
        if self.losses is not None:
            return self.losses[key]
        loss = _cached_loss(self.cache_dir, key)
        if loss is None:
            raise KeyError(f"site loss {key} is not in the cache {self.cache_dir}")
        return loss


def _tile_elevation(dem: DemSource, tile: Tile, step: int) -> np.ndarray:
    """Ground elevation (float64) of a tile's analysis cells: every step-th DEM cell."""
    r0, c0, r1, c1 = tile
    half = step // 2
    window = dem.read(r0 * step, c0 * step, (r1 - r0) * step, (c1 - c0) * step)
    return window[half::step, half::step].astype(np.float64)


def _mosaic_tile(m: _MosaicInputs, tile: Tile) -> tuple[Tile, dict[str, np.ndarray]]:
    """Every layer over one tile; the tile comes back too, so results arriving in any
    order land in place. Reads only the tile's DEM window and the losses reaching it."""
    r0, c0, r1, c1 = tile
    shape = (r1 - r0, c1 - c0)
    best = np.full(shape, -np.inf, dtype=np.float32)
    idx = np.full(shape, NO_SERVER, dtype=np.int32)
    sum_mw = np.zeros((m.table.n_slots, *shape), dtype=np.float64)
    t, p = m.transform, m.params
    elevation = _tile_elevation(m.dem, tile, p.analysis_step)
    inv_2kr = _inv_2kr(p.k_factor, p.earth_radius_m)
    b = m.bounds
    near = np.flatnonzero((b[:, 0] < r1) & (r0 < b[:, 2]) & (b[:, 1] < c1) & (c0 < b[:, 3]))
    for k in near:
        g = m.groups[k]
        loss = m.loss(g.loss_key)
        sec = [m.sectors[i] for i in g.sector_indices]
        f_index = {f: i for i, f in enumerate(loss.freqs_mhz)}
        _kernels.accumulate(
            loss.loss_db,
            loss.row0,
            loss.col0,
            elevation,
            r0,
            c0,
            best,
            idx,
            sum_mw,
            t.c + 0.5 * t.a,
            t.a,
            t.f + 0.5 * t.e,
            t.e,
            g.x_m,
            g.y_m,
            loss.z_tx_m,
            p.radio.ue_height_m,
            inv_2kr,
            np.array([f_index[s.freq_mhz] for s in sec], dtype=np.int64),
            m.table.slot[list(g.sector_indices)],
            np.array(g.sector_indices, dtype=np.int64),
            *(
                np.array([getattr(s, name) for s in sec], dtype=np.float64)
                for name in (
                    "azimuth_deg",
                    "mech_tilt_deg",
                    "elec_tilt_deg",
                    "h_beamwidth_deg",
                    "v_beamwidth_deg",
                    "gain_dbi",
                )
            ),
            m.table.pre_dbm[list(g.sector_indices)],
            p.radio.front_to_back_db,
            p.radio.side_lobe_v_db,
            p.radio.ue_antenna_gain_dbi - p.clutter_margin_db,
        )
    served = idx != NO_SERVER
    q = np.where(served, idx, 0)
    rsrp = np.where(served, best, np.nan)
    s_mw = 10.0 ** (rsrp / 10.0)
    total = np.take_along_axis(sum_mw, m.table.slot[q][None], axis=0)[0]
    interference = p.radio.dl_interference_load * np.maximum(total - s_mw, 0.0)
    sinr = 10.0 * np.log10(s_mw / (interference + 10.0 ** (m.table.dl_noise_dbm[q] / 10.0)))
    coupling_gain = rsrp - m.table.pre_dbm[q] - p.radio.ue_antenna_gain_dbi  # site gain - loss
    rate = uplink_rate_mbps(
        coupling_gain,
        ue_power_dbm=m.table.ul_power_dbm[q],
        noise_dbm=m.table.ul_noise_dbm[q],
        bandwidth_hz=m.table.ul_bandwidth_hz[q],
        time_fraction=m.table.ul_time_fraction[q],
        radio=p.radio,
        uplink=p.uplink,
    )
    rate = np.where(served, rate, 0.0)
    classes = service_class_codes(rate, p.thresholds)
    classes[np.isnan(elevation)] = SERVICE_CLASS_NODATA
    layers = {
        "best_server": idx,
        "rsrp_dbm": rsrp,
        "sinr_db": np.where(served, sinr, np.nan),
        "ul_rate_mbps": rate,
        "service_class": classes,
    }
    return tile, {name: a.astype(_LAYERS[name][0], copy=False) for name, a in layers.items()}


def _analysis_grid(dem: DemSource, step: int) -> tuple[tuple[int, int], Affine]:
    """Shape and transform of the analysis grid."""
    return _analysis_shape(dem, step), dem.transform @ Affine.scale(step)


def _check_sectors(sectors: Sequence[SectorSpec]) -> tuple[SectorSpec, ...]:
    seen: set[tuple[str, str]] = set()
    for s in sectors:
        key = (s.site_code, s.sector_code)
        if key in seen:
            raise ValueError(f"duplicate sector {s.site_code}/{s.sector_code}")
        seen.add(key)
    return tuple(sectors)


def _progress_counter(progress: Progress | None, total: int) -> Callable[[], None]:
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    return tick


def _full_run(
    dem: DemSource,
    sectors: Sequence[SectorSpec],
    params: CoverageParams | None,
    progress: Progress | None,
) -> tuple[
    CoverageParams,
    tuple[SectorSpec, ...],
    list[_SiteGroup],
    tuple[int, int],
    Affine,
    list[Tile],
    Callable[[], None],
]:
    """Parameters, checked sectors, site groups, analysis grid (shape, transform), all its
    tiles and the progress counter of a run over the whole grid."""
    p = params or CoverageParams()
    sectors = _check_sectors(sectors)
    groups = _group_sectors(dem, sectors, p)
    shape, transform = _analysis_grid(dem, p.analysis_step)
    tiles = _tiles(shape)
    tick = _progress_counter(progress, len(groups) + len(tiles))
    return p, sectors, groups, shape, transform, tiles, tick


def compute_coverage(
    dem: DemSource,
    sectors: Sequence[SectorSpec],
    params: CoverageParams | None = None,
    *,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> CoverageResult:
    """Coverage mosaics of a set of sectors over a DEM, in memory.

    Parameters
    ----------
    dem : Dem or DemFile
        Terrain in a metric CRS; sector coordinates are in this CRS.
    sectors : sequence of SectorSpec
        All sectors; inactive sites (`site_active` False) are left out.
    params : CoverageParams, optional
        Model and constants.
    cache_dir : str or pathlib.Path, optional
        Directory of the per-site loss cache; None disables it.
    workers : int, optional
        Threads for the per-site sweeps and the tiles (default: CPU count), when no
        `executor` is given.
    executor : Executor, optional
        Where the site and tile tasks run: `ThreadExecutor` (default) or a
        `DaskExecutor`; the results are the same.
    progress : callable, optional
        Called as progress(done, total) after each site group and each tile.

    Returns
    -------
    CoverageResult

    See Also
    --------
    compute_coverage_to_geotiffs : the same mosaics streamed to disk, for any area.
    """
    p, sectors, groups, shape, transform, tiles, tick = _full_run(dem, sectors, params, progress)
    out = {
        "best_server": np.full(shape, NO_SERVER, dtype=np.int32),
        "rsrp_dbm": np.full(shape, np.nan, dtype=np.float32),
        "sinr_db": np.full(shape, np.nan, dtype=np.float32),
        "ul_rate_mbps": np.zeros(shape, dtype=np.float32),
        "service_class": np.zeros(shape, dtype=np.uint8),
    }
    result = _losses_and_mosaic(
        dem,
        p,
        sectors,
        groups,
        tiles,
        transform,
        out,
        {},
        cache_dir,
        executor or ThreadExecutor(workers),
        tick,
    )
    logger.info(
        "coverage: %d site groups (%d computed), %d tiles",
        len(groups),
        result.n_computed,
        len(tiles),
    )
    return result


def _losses_and_mosaic(
    dem: DemSource,
    p: CoverageParams,
    sectors: tuple[SectorSpec, ...],
    groups: list[_SiteGroup],
    tiles: list[Tile],
    transform: Affine,
    out: dict[str, np.ndarray],
    known: Mapping[str, SiteLoss],
    cache_dir: str | Path | None,
    executor: Executor,
    tick: Callable[[], None],
) -> CoverageResult:
    """Resolve every site group's loss (known, cached or computed), mosaic ``tiles`` into
    ``out`` and wrap it all in a result."""
    cache = Path(cache_dir) if cache_dir is not None else None
    losses, n_computed = _resolve_losses(dem, groups, p, known, cache, executor, tick)
    inputs = _MosaicInputs.build(dem, p, sectors, groups, transform, losses, None)
    for (r0, c0, r1, c1), layers in executor.map_unordered(_mosaic_tile, inputs, tiles):
        for name, data in layers.items():
            out[name][r0:r1, c0:c1] = data
        tick()
    return CoverageResult(
        dem,
        p,
        sectors,
        transform,
        dem.crs,
        site_losses=losses,
        n_computed=n_computed,
        n_cached=len(groups) - n_computed,
        **out,
    )


def update_coverage(
    previous: CoverageResult,
    sectors: Sequence[SectorSpec],
    *,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> CoverageResult:
    """Coverage after editing sectors: recompute only what the edit touches.

    Site groups whose loss inputs are unchanged reuse the previous loss (or
    the disk cache); only tiles within the windows of site groups that were
    added, removed or edited (any field of any of their sectors) are
    re-mosaicked. The result equals `compute_coverage` on the new sectors.

    Parameters
    ----------
    previous : CoverageResult
        Result on the same DEM and parameters.
    sectors : sequence of SectorSpec
        The complete new list of sectors.
    cache_dir, workers, executor, progress
        As in `compute_coverage`.

    Returns
    -------
    CoverageResult
    """
    p, dem = previous.params, previous.dem
    sectors = _check_sectors(sectors)
    groups = _group_sectors(dem, sectors, p)
    old_groups = _group_sectors(dem, previous.sectors, p)
    old_signatures = {g.signature for g in old_groups}
    new_signatures = {g.signature for g in groups}
    changed = [g for g in groups if g.signature not in old_signatures]
    changed += [g for g in old_groups if g.signature not in new_signatures]
    touched = [_group_bounds(dem, g, p) for g in changed]
    shape, transform = _analysis_grid(dem, p.analysis_step)
    tiles = [t for t in _tiles(shape) if any(_overlaps(b, t) for b in touched)]
    tick = _progress_counter(progress, len(groups) + len(tiles))
    remap = np.full(len(previous.sectors) + 1, NO_SERVER, dtype=np.int32)
    index = {(s.site_code, s.sector_code): i for i, s in enumerate(sectors)}
    for i, s in enumerate(previous.sectors):
        remap[i] = index.get((s.site_code, s.sector_code), NO_SERVER)
    out = {
        "best_server": remap[previous.best_server],  # NO_SERVER (-1) maps to the last entry
        "rsrp_dbm": previous.rsrp_dbm.copy(),
        "sinr_db": previous.sinr_db.copy(),
        "ul_rate_mbps": previous.ul_rate_mbps.copy(),
        "service_class": previous.service_class.copy(),
    }
    result = _losses_and_mosaic(
        dem,
        p,
        sectors,
        groups,
        tiles,
        transform,
        out,
        previous.site_losses,
        cache_dir,
        executor or ThreadExecutor(workers),
        tick,
    )
    logger.info(
        "coverage update: %d site groups changed, %d computed, %d tiles re-mosaicked",
        len(changed),
        result.n_computed,
        len(tiles),
    )
    return result


# --------------------------------------------------------------------------- outputs


def values_at(result: CoverageResult, x_m: float, y_m: float) -> PointValues:
    """All coverage values of the analysis cell containing a point (DEM CRS).

    Raises
    ------
    ValueError
        If the point is outside the analysis grid.
    """
    col, row = ~result.transform @ (x_m, y_m)
    r, c = math.floor(row), math.floor(col)
    if not (0 <= r < result.best_server.shape[0] and 0 <= c < result.best_server.shape[1]):
        raise ValueError(f"point ({x_m}, {y_m}) is outside the coverage grid")
    i = int(result.best_server[r, c])
    sector = result.sectors[i] if i != NO_SERVER else None
    code = int(result.service_class[r, c])
    return PointValues(
        site_code=sector.site_code if sector else None,
        sector_code=sector.sector_code if sector else None,
        rsrp_dbm=float(result.rsrp_dbm[r, c]),
        sinr_db=float(result.sinr_db[r, c]),
        ul_rate_mbps=float(result.ul_rate_mbps[r, c]),
        service_class=SERVICE_CLASSES[code] if code != SERVICE_CLASS_NODATA else "nodata",
    )


_LAYERS: dict[str, tuple[str, float | int | None, str]] = {
    # name: (dtype, nodata, description)
    "best_server": ("int32", NO_SERVER, "index of the best server in the sector_lookup tag"),
    "rsrp_dbm": ("float32", math.nan, "RSRP of the best server, dBm"),
    "sinr_db": ("float32", math.nan, "downlink SINR, dB"),
    "ul_rate_mbps": ("float32", None, "sustained uplink rate to the best server, Mbps"),
    "service_class": ("uint8", SERVICE_CLASS_NODATA, "livestream service class code"),
}
_CATEGORICAL = ("best_server", "service_class")  # overviews by nearest, not by average


class _LayerWriter:
    """Every layer as a tiled GeoTIFF written window by window, made a COG on closing.

    Only the windows being written are in memory; the conversion to cloud-optimised
    GeoTIFFs (with overviews) at the end reads block by block as well.
    """

    def __init__(
        self,
        directory: str | Path,
        prefix: str,
        shape: tuple[int, int],
        transform: Affine,
        crs: CRS,
        tags: Mapping[str, str],
    ) -> None:
        self.directory = Path(directory)
        self.paths = {name: self.directory / f"{prefix}_{name}.tif" for name in _LAYERS}
        self._partial = {name: self.directory / f".{prefix}_{name}.partial.tif" for name in _LAYERS}
        self._grid = {"height": shape[0], "width": shape[1], "transform": transform, "crs": crs}
        self._tags = tags
        self._files: dict[str, rasterio.io.DatasetWriter] = {}

    def __enter__(self) -> _LayerWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, (dtype, nodata, description) in _LAYERS.items():
            dst = rasterio.open(
                self._partial[name],
                "w",
                driver="GTiff",
                count=1,
                dtype=dtype,
                nodata=nodata,
                tiled=True,
                blockxsize=TILE_SIZE,
                blockysize=TILE_SIZE,
                compress="DEFLATE",
                BIGTIFF="IF_SAFER",
                **self._grid,
            )
            self._files[name] = dst
            dst.update_tags(layer=name, **self._tags)
            dst.set_band_description(1, description)
        return self

    def write(self, tile: Tile, layers: Mapping[str, np.ndarray]) -> None:
        r0, c0, r1, c1 = tile
        window = Window(c0, r0, c1 - c0, r1 - r0)
        for name, dst in self._files.items():
            dst.write(layers[name].astype(_LAYERS[name][0], copy=False), 1, window=window)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        for name, dst in self._files.items():
            dst.close()
            if exc_type is None:
                rasterio.shutil.copy(
                    self._partial[name],
                    self.paths[name],
                    driver="COG",
                    compress="DEFLATE",
                    blocksize=256,
                    BIGTIFF="IF_SAFER",
                    overview_resampling="nearest" if name in _CATEGORICAL else "average",
                )
            self._partial[name].unlink()


def _coverage_tags(
    params: CoverageParams, dem: DemSource, sectors: Sequence[SectorSpec]
) -> dict[str, str]:
    return {
        "model": params.model,
        "params": json.dumps(asdict(params), sort_keys=True),
        "dem_fingerprint": dem.fingerprint,
        "sector_lookup": json.dumps([f"{s.site_code}/{s.sector_code}" for s in sectors]),
        "service_classes": json.dumps(
            dict(enumerate(SERVICE_CLASSES)) | {SERVICE_CLASS_NODATA: "nodata"}
        ),
    }


def write_coverage_geotiffs(
    result: CoverageResult, directory: str | Path, *, prefix: str = "coverage"
) -> dict[str, Path]:
    """Write each mosaic as a cloud-optimised GeoTIFF (tiled, DEFLATE, overviews).

    Every file carries tags: the model, all parameters (JSON), the DEM
    fingerprint, the sector lookup of best_server and the service class
    codes.

    Parameters
    ----------
    result : CoverageResult
    directory : str or pathlib.Path
        Output directory (created if missing).
    prefix : str
        File name prefix: ``{prefix}_{layer}.tif``.

    Returns
    -------
    dict
        Layer name to path.
    """
    shape = result.best_server.shape
    tags = _coverage_tags(result.params, result.dem, result.sectors)
    with _LayerWriter(directory, prefix, shape, result.transform, result.crs, tags) as writer:
        writer.write((0, 0, *shape), {name: getattr(result, name) for name in _LAYERS})
    return dict(writer.paths)


@dataclass(frozen=True)
class CoverageFiles:
    """Coverage mosaics written to disk by `compute_coverage_to_geotiffs`.

    Attributes
    ----------
    paths : mapping
        Layer name to its cloud-optimised GeoTIFF (as `write_coverage_geotiffs`).
    shape : tuple of int
        (rows, cols) of the analysis grid.
    transform : affine.Affine
        Its transform.
    n_computed, n_cached : int
        Site groups whose loss was computed, and found in the disk cache.
    """

    paths: Mapping[str, Path]
    shape: tuple[int, int]
    transform: Affine
    n_computed: int
    n_cached: int


def compute_coverage_to_geotiffs(
    dem: DemSource,
    sectors: Sequence[SectorSpec],
    directory: str | Path,
    params: CoverageParams | None = None,
    *,
    prefix: str = "coverage",
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> CoverageFiles:
    """Coverage mosaics streamed tile by tile to GeoTIFFs: memory stays bounded for any area.

    Site losses are written to the disk cache and stay there. Each tile task
    reads its own DEM window and the losses that reach it (the last
    `LOSS_LRU_SIZE` kept per process) and returns its layers, which are written
    into tiled GeoTIFFs as they arrive; no process holds a whole mosaic. The
    files equal ``write_coverage_geotiffs(compute_coverage(...))`` cell for cell.

    Parameters
    ----------
    dem : Dem or DemFile
        Terrain in a metric CRS; a `DemFile` for grids too large to hold (tasks
        then read only their windows of the GeoTIFF).
    sectors : sequence of SectorSpec
        All sectors; inactive sites are left out.
    directory : str or pathlib.Path
        Output directory (created if missing); files ``{prefix}_{layer}.tif``.
    params : CoverageParams, optional
        Model and constants.
    prefix : str
        File name prefix.
    cache_dir : str or pathlib.Path, optional
        Loss cache directory (default: a temporary one, removed afterwards). With
        Dask workers on other machines it must be on a file system they share, as
        must the DEM file.
    workers, executor, progress
        As in `compute_coverage`.

    Returns
    -------
    CoverageFiles
    """
    p, sectors, groups, shape, transform, tiles, tick = _full_run(dem, sectors, params, progress)
    executor = executor or ThreadExecutor(workers)
    with contextlib.ExitStack() as stack:
        cache = Path(
            cache_dir
            if cache_dir is not None
            else stack.enter_context(tempfile.TemporaryDirectory(prefix="site-losses-"))
        )
        _, n_computed = _resolve_losses(dem, groups, p, {}, cache, executor, tick, keep=False)
        inputs = _MosaicInputs.build(dem, p, sectors, groups, transform, None, cache)
        tags = _coverage_tags(p, dem, sectors)
        with _LayerWriter(directory, prefix, shape, transform, dem.crs, tags) as writer:
            for tile, layers in executor.map_unordered(_mosaic_tile, inputs, tiles):
                writer.write(tile, layers)
                tick()
        _cached_loss.cache_clear()  # this process's share (threads); workers keep a bounded LRU
    logger.info(
        "coverage to %s: %d site groups (%d computed), %d tiles",
        directory,
        len(groups),
        n_computed,
        len(tiles),
    )
    return CoverageFiles(writer.paths, shape, transform, n_computed, len(groups) - n_computed)
