"""Basic transmission loss: per site over a window, at a few points, line of sight.

Sites are placed at the centre of the DEM cell containing them (at most half a
cell away) for the path loss. Each site group's loss is identified by the hash of
its inputs (`loss_key`), which the disk cache and incremental updates key on.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from affine import Affine

from registry.radio import _kernels, _p1812_kernels
from registry.radio.coverage.types import CoverageParams, SectorSpec, SiteGroup, SiteLoss, Tile
from registry.terrain import EARTH_RADIUS_M, K_FACTOR, Dem, DemSource

LOSS_VERSION = 2  # part of every loss cache key: bump when the loss computation changes


class SiteLossFn(Protocol):
    """Signature of `site_path_loss`: what a backend computes for each site group."""

    def __call__(
        self,
        dem: DemSource,
        x_m: float,
        y_m: float,
        *,
        antenna_height_m: float,
        freqs_mhz: Sequence[float],
        ground_elevation_m: float | None = None,
        params: CoverageParams | None = None,
    ) -> SiteLoss: ...


KernelBackend = Literal["auto", "cpu", "gpu", "dask"]
"""Whose kernels compute one site: the CPU's or the CUDA ones (see `site_path_loss`)."""


def analysis_shape(dem: DemSource, step: int) -> tuple[int, int]:
    """Rows and columns of the analysis grid (every step-th DEM cell)."""
    return dem.shape[0] // step, dem.shape[1] // step


def site_cell(dem: DemSource, x_m: float, y_m: float) -> tuple[int, int]:
    """DEM cell containing a point; ValueError outside the DEM."""
    row, col = dem.cell_index(x_m, y_m)
    r, c = math.floor(float(row) + 0.5), math.floor(float(col) + 0.5)
    if not (0 <= r < dem.shape[0] and 0 <= c < dem.shape[1]):
        raise ValueError(f"point ({x_m}, {y_m}) is outside the DEM")
    return r, c


@dataclass(frozen=True)
class Window:
    """Square DEM window of half-width n around a site cell, and its analysis lattice."""

    n: int
    phase_r: int  # first window row/column on the lattice
    phase_c: int
    row0: int  # analysis cell of the lattice's first row/column
    col0: int
    shape: tuple[int, int]  # lattice cells in the window

    @property
    def bounds(self) -> Tile:
        return self.row0, self.col0, self.row0 + self.shape[0], self.col0 + self.shape[1]


def window(dem: DemSource, r: int, c: int, radius_m: float, step: int) -> Window:
    """The loss window of a site at DEM cell (r, c)."""
    n = step * math.ceil(math.ceil(radius_m / min(dem.cell_size)) / step)
    half = step // 2
    phase_r = (half - (r - n)) % step
    phase_c = (half - (c - n)) % step
    return Window(
        n,
        phase_r,
        phase_c,
        (r - n + phase_r - half) // step,
        (c - n + phase_c - half) // step,
        ((2 * n - phase_r) // step + 1, (2 * n - phase_c) // step + 1),
    )


def site_window(
    dem: DemSource,
    x_m: float,
    y_m: float,
    antenna_height_m: float,
    ground_elevation_m: float | None,
    radius_m: float,
    step: int,
) -> tuple[Window, np.ndarray, float]:
    """A site's window, its terrain (NaN outside the DEM) and the antenna's elevation.

    Where the DEM has a void under the site, the window takes the given ground elevation
    there: every profile starts at the site's ground.
    """
    r, c = site_cell(dem, x_m, y_m)
    w = window(dem, r, c, radius_m, step)
    win = dem.read(r - w.n, c - w.n, 2 * w.n + 1, 2 * w.n + 1)
    if ground_elevation_m is not None and not math.isfinite(win[w.n, w.n]):
        win[w.n, w.n] = ground_elevation_m
    ground = float(win[w.n, w.n]) if ground_elevation_m is None else ground_elevation_m
    if not math.isfinite(ground):
        raise ValueError(f"no ground elevation at ({x_m}, {y_m})")
    return w, win, ground + antenna_height_m


def bulge_factor(k_factor: float, earth_radius_m: float) -> float:
    """1 / (2 k R): the earth bulge d1 d2 / (2 k R) at distances d1, d2 from a path's ends."""
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
    backend: KernelBackend = "cpu",
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
    backend : {"cpu", "gpu", "auto", "dask"}
        As in `site_path_loss` (the same masks on either).

    Returns
    -------
    mask : numpy.ndarray
        bool, True where visible; False beyond the radius or without terrain.
        Covers the square window around the observer, clipped to the DEM.
    transform : affine.Affine
        Transform of `mask`.
    """
    if backend != "cpu":
        from registry.radio import gpu

        if gpu.kernel_backend(backend) == "gpu":
            observer = gpu.Observer(x_m, y_m, observer_height_m)
            return gpu.line_of_sight_masks(
                dem,
                [observer],
                target_height_m=target_height_m,
                max_distance_m=max_distance_m,
                k_factor=k_factor,
                earth_radius_m=earth_radius_m,
            )[0]
    r, c = site_cell(dem, x_m, y_m)
    if not math.isfinite(dem.elevation_m[r, c]):
        raise ValueError(f"no ground elevation at ({x_m}, {y_m})")
    n = window(dem, r, c, max_distance_m, 1).n
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
        bulge_factor(k_factor, earth_radius_m),
        max_distance_m,
        mask,
        r_lo,
        c_lo,
    )
    return mask, dem.transform @ Affine.translation(c_lo, r_lo)


def loss_key(
    dem: DemSource,
    x_m: float,
    y_m: float,
    ground_elevation_m: float | None,
    height_m: float,
    freqs_mhz: Sequence[float],
    params: CoverageParams,
) -> str:
    """Hash of every input of a site's loss: the cache key."""
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
        "version": LOSS_VERSION,
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
    backend: KernelBackend = "cpu",
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
    backend : {"cpu", "gpu", "auto", "dask"}
        Kernels: the CPU's, or the CUDA ones (`registry.radio.gpu`, the same losses within
        0.1 dB); "auto" takes the GPU when a CUDA device is present; "dask" is "cpu" here.

    Returns
    -------
    SiteLoss
        Loss in dB: free space + Deygout ("deygout"), ITU-R P.1812-8 ("p1812"),
        TR 38.901 RMa with LOS
        from the sweep ("rma"), or COST-231 Hata ("hata"); clutter is not included.
    """
    p = params or CoverageParams()
    if backend != "cpu":
        from registry.radio import gpu

        if gpu.kernel_backend(backend) == "gpu":
            antenna = gpu.Antenna(x_m, y_m, antenna_height_m, tuple(freqs_mhz), ground_elevation_m)
            return gpu.site_path_losses(dem, [antenna], p)[0]
    step = p.analysis_step
    w, win, z_tx = site_window(
        dem, x_m, y_m, antenna_height_m, ground_elevation_m, p.max_radius_m, step
    )
    freqs = np.asarray(freqs_mhz, dtype=np.float64)
    dx, dy = dem.cell_size
    inv_2kr = bulge_factor(p.k_factor, p.earth_radius_m)
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
    key = loss_key(dem, x_m, y_m, ground_elevation_m, antenna_height_m, list(freqs), p)
    return SiteLoss(key, tuple(float(f) for f in freqs), w.row0, w.col0, out, z_tx)


def point_path_loss(
    dem: DemSource,
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

    Each cell gets exactly the value `site_path_loss` maps there, so maps and siting
    agree. For "deygout" and "p1812" only each cell's own sweep ray is walked
    (`registry.radio._kernels.deygout_point_losses`,
    `registry.radio._p1812_kernels.p1812_point_losses`): O(distance) per cell instead
    of the whole window. The empirical models read the `site_path_loss` window (cheap
    for them).

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
    if p.model not in ("deygout", "p1812"):
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
    step = p.analysis_step
    w, win, z_tx = site_window(
        dem, x_m, y_m, antenna_height_m, ground_elevation_m, p.max_radius_m, step
    )
    r, c = site_cell(dem, x_m, y_m)
    # DEM offsets of the cells from the site (the window centre)
    drs = step // 2 + rows * step - r
    dcs = step // 2 + cols * step - c
    out = np.empty(rows.size)
    dx, dy = dem.cell_size
    rx_h = p.radio.ue_height_m
    if p.model == "deygout":
        _kernels.deygout_point_losses(
            win,
            w.n,
            step,
            dy,
            dx,
            z_tx,
            rx_h,
            bulge_factor(p.k_factor, p.earth_radius_m),
            p.max_radius_m,
            drs,
            dcs,
            float(freq_mhz),
            out,
        )
    else:
        _p1812_kernels.p1812_point_losses(
            win, w.n, step, dy, dx, z_tx, rx_h, p.max_radius_m, drs, dcs, float(freq_mhz), out
        )
    return out


def _sector_signature(sector: SectorSpec) -> str:
    return repr(sector)  # a frozen dataclass of plain values: its repr names every field


def group_sectors(
    dem: DemSource, sectors: Sequence[SectorSpec], params: CoverageParams
) -> list[SiteGroup]:
    """Active sectors grouped by antenna position and height, in first-seen order."""
    by_antenna: dict[tuple[float, float, float | None, float], list[int]] = {}
    for i, s in enumerate(sectors):
        if s.site_active:
            by_antenna.setdefault((s.x_m, s.y_m, s.ground_elevation_m, s.height_m), []).append(i)
    groups = []
    for (x, y, ground, height), idx in by_antenna.items():
        freqs = tuple(sorted({sectors[i].freq_mhz for i in idx}))
        key = loss_key(dem, x, y, ground, height, freqs, params)
        signature = hashlib.blake2b(
            (key + "".join(_sector_signature(sectors[i]) for i in idx)).encode(), digest_size=16
        ).hexdigest()
        groups.append(SiteGroup(x, y, ground, height, freqs, tuple(idx), key, signature))
    return groups


def group_bounds(dem: DemSource, g: SiteGroup, params: CoverageParams) -> Tile:
    """Analysis-grid bounds of a group's loss window (without computing it)."""
    r, c = site_cell(dem, g.x_m, g.y_m)
    return window(dem, r, c, params.max_radius_m, params.analysis_step).bounds
