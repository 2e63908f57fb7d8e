"""Synthetic 30 m terrain for the Lai Châu demo.

The only real elevation data we may ship is a ~9 km grid (pvlib/Mapzen), far
too coarse for radio work in steep valleys. This module keeps that real relief
and adds seeded fractal detail by spectral synthesis, so the result has Lai
Châu's broad shape, its height range (about 160-3,100 m) and realistically
steep, incised slopes. The output is SYNTHETIC and labelled so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import scipy.fft
from affine import Affine
from rasterio.warp import Resampling, reproject, transform_bounds
from scipy.ndimage import map_coordinates

from registry.terrain import apply_transform

UTM_CRS = "EPSG:32648"  # UTM 48N: Lai Châu's metric CRS (DESIGN.md)
PROVINCE_BBOX = (102.32, 21.68, 103.99, 22.82)  # lon/lat bounds of the 38 communes, rounded
MARGIN_M = 2_000.0  # terrain beyond the border, so profiles near the edge still have ground
NODATA = -32768.0  # same nodata value as the pvlib source grid

# Spectral synthesis. Every wavenumber's random coefficient is drawn from a
# generator keyed by (seed, field, row wavenumber), so a coarse grid holds the
# same long waves as a fine one and tests at 500 m see the terrain of 30 m.
VALLEY_FOLD_M = 520.0  # m per unit |n|: a field folded at its zero lines has V-shaped valleys
RIDGE_FOLD_M = 400.0  # m per unit -|n| of a second field: knife-edge ridges
ROUGH_SIGMA_M = 60.0  # hillslope texture below 3 km
BAND_LONGEST_M = 10_000.0  # longer waves come from the real 9 km grid (its Nyquist is 18 km)
BAND_SHORTEST_M = 1_500.0  # shortest valley/ridge spacing
ROUGH_LONGEST_M = 3_000.0
BAND_ALPHA = 2.0  # amplitude ∝ f^-alpha; 2.0 = fBm with H = 1 (smooth ridges)
ROUGH_ALPHA = 1.8  # H = 0.8, within the 0.7-0.9 measured on real mountain DEMs
ANISOTROPY = 1.3  # features 1.3² ≈ 1.7x longer NW-SE, the structural grain of NW Vietnam
GRAIN_AZIMUTH_DEG = 135.0  # NW-SE trend of the Hoàng Liên Sơn and Pu Si Lung ranges
RELIEF_PER_M = 1.0 / 1_000.0  # detail scales with the regional height: uplands are rougher
RELIEF_SCALE_RANGE = (0.5, 1.2)
# Heights are squashed smoothly (tanh) above/below a knee towards an asymptote:
# Pu Si Lung 3,083 m and Phan Xi Păng 3,143 m on the border; the Đà river leaves
# the province at about 170 m.
TOP_KNEE_M, TOP_LIMIT_M = 2_500.0, 3_150.0
FLOOR_KNEE_M, FLOOR_LIMIT_M = 500.0, 160.0
# The detail fades out near real towns and admin centres (Gaussian, this radius), so they
# sit on gentle ground at the real regional height (e.g. Lai Châu city ~1,000 m).
SETTLEMENT_RADIUS_M = 1_000.0


@dataclass(frozen=True)
class Dem:
    """Heights in metres on a north-up grid in UTM 48N.

    Attributes
    ----------
    heights : float32 array (rows, cols), metres above sea level.
    transform : affine transform of the grid (cell corners).
    """

    heights: np.ndarray
    transform: Affine

    @property
    def resolution_m(self) -> float:
        """Cell size in metres."""
        return float(self.transform.a)

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear height (m) at UTM points; edge cells are extended outwards."""
        col, row = ~self.transform @ (np.asarray(x, float), np.asarray(y, float))
        return map_coordinates(
            self.heights, [row - 0.5, col - 0.5], output=np.float64, order=1, mode="nearest"
        )

    def slope_deg(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Slope (degrees) at UTM points by central differences one cell apart."""
        x, y, d = np.asarray(x, float), np.asarray(y, float), self.resolution_m
        dzdx = (self.sample(x + d, y) - self.sample(x - d, y)) / (2 * d)
        dzdy = (self.sample(x, y + d) - self.sample(x, y - d)) / (2 * d)
        return np.degrees(np.arctan(np.hypot(dzdx, dzdy)))

    def relief(self, x: np.ndarray, y: np.ndarray, radius_m: float) -> np.ndarray:
        """Topographic position (m): height minus the mean of 8 points on a ring.

        Positive on ridges and peaks, negative in valleys.
        """
        x, y = np.asarray(x, float), np.asarray(y, float)
        angles = np.arange(8) * np.pi / 4
        ring = [self.sample(x + radius_m * np.cos(a), y + radius_m * np.sin(a)) for a in angles]
        return self.sample(x, y) - np.mean(ring, axis=0)


def grid_for(resolution_m: float) -> tuple[Affine, int, int]:
    """Transform, width and height of the DEM grid covering the province plus margin."""
    left, bottom, right, top = transform_bounds("EPSG:4326", UTM_CRS, *PROVINCE_BBOX)
    left = np.floor((left - MARGIN_M) / resolution_m) * resolution_m
    top = np.ceil((top + MARGIN_M) / resolution_m) * resolution_m
    width = int(np.ceil((right + MARGIN_M - left) / resolution_m))
    height = int(np.ceil((top - bottom + MARGIN_M) / resolution_m))
    return Affine(resolution_m, 0.0, left, 0.0, -resolution_m, top), width, height


def _amplitude(
    f: np.ndarray, alpha: float, longest_m: float, shortest_m: float | None
) -> np.ndarray:
    """Amplitude spectrum f^-alpha, rolled off (Gaussian) outside 1/longest_m-1/shortest_m."""
    with np.errstate(divide="ignore", invalid="ignore"):
        amp = -np.expm1(-((f * longest_m) ** 2)) * f**-alpha
    if shortest_m is not None:
        amp *= np.exp(-((f * shortest_m) ** 2))
    return np.where(f > 0, amp, 0.0)


def _spectral_field(
    shape: tuple[int, int],
    resolution_m: float,
    seed: int,
    stream: int,
    *,
    alpha: float,
    longest_m: float,
    shortest_m: float | None = None,
) -> np.ndarray:
    """Zero-mean Gaussian random field with unit standard deviation, float32.

    The spectrum is built one row of wavenumbers at a time (no full-size
    frequency arrays) and stretched along GRAIN_AZIMUTH_DEG by ANISOTROPY.
    """
    ny, nx = shape
    fx = scipy.fft.rfftfreq(nx, resolution_m)
    fy = scipy.fft.fftfreq(ny, resolution_m)
    # Grid columns run east and rows south, so the grain axis is (sin az, -cos az).
    az = np.radians(GRAIN_AZIMUTH_DEG)
    spec = np.empty((ny, fx.size), np.complex64)
    for i in range(ny):
        along = fx * np.sin(az) - fy[i] * np.cos(az)
        across = fx * np.cos(az) + fy[i] * np.sin(az)
        f = np.hypot(along * ANISOTROPY, across / ANISOTROPY)
        k_row = i if i <= ny // 2 else i - ny
        z = np.random.default_rng([seed, stream, k_row + 2**20]).standard_normal((fx.size, 2))
        spec[i] = _amplitude(f, alpha, longest_m, shortest_m) * (z[:, 0] + 1j * z[:, 1])
    # Variance = 2 * sum(amp²) over the full wavenumber plane. Taking it from the
    # continuous spectrum (a radial integral; the anisotropic stretch has unit
    # Jacobian) rather than from this grid keeps a coarse grid a low-pass of a fine one.
    f = np.geomspace(1e-7, 0.1, 4000)
    radial = np.trapezoid(_amplitude(f, alpha, longest_m, shortest_m) ** 2 * f, f)
    variance = 2 * nx * ny * resolution_m**2 * 2 * np.pi * radial
    # Two 1-D passes, the first in place, keep the peak memory at one spectrum plus one field.
    spec = scipy.fft.ifft(spec, axis=0, norm="forward", overwrite_x=True, workers=-1)
    field = scipy.fft.irfft(spec, n=nx, axis=1, norm="forward", workers=-1)
    del spec
    field /= np.float32(np.sqrt(variance))
    return field


def _squash(h: np.ndarray, knee: float, limit: float) -> None:
    """In place: heights beyond `knee` approach `limit` smoothly (tanh), never cross it."""
    span = limit - knee
    beyond = (h - knee) / span > 0
    h[beyond] = knee + span * np.tanh((h[beyond] - knee) / span)


def _calm_settlements(detail: np.ndarray, transform: Affine, x: np.ndarray, y: np.ndarray) -> None:
    """In place: scale `detail` by 1 - exp(-d²/R²) around each point; R = SETTLEMENT_RADIUS_M."""
    half = int(np.ceil(3 * SETTLEMENT_RADIUS_M / transform.a))
    for px, py in zip(x, y, strict=True):
        col, row = (int(v) for v in ~transform @ (px, py))
        r0, c0 = max(row - half, 0), max(col - half, 0)
        window = detail[r0 : row + half + 1, c0 : col + half + 1]
        rows, cols = np.ogrid[r0 : r0 + window.shape[0], c0 : c0 + window.shape[1]]
        cx, cy = apply_transform(transform, cols + 0.5, rows + 0.5)
        window *= -np.expm1(-((cx - px) ** 2 + (cy - py) ** 2) / SETTLEMENT_RADIUS_M**2)


def synthesize_dem(
    coarse_path: Path,
    *,
    seed: int,
    resolution_m: float,
    settlements: tuple[np.ndarray, np.ndarray] | None = None,
) -> Dem:
    """Build the synthetic DEM on the province grid.

    Parameters
    ----------
    coarse_path : the real coarse elevation GeoTIFF (any CRS), metres.
    seed : seed of the fractal detail.
    resolution_m : cell size in metres (30 for the demo, coarser for tests).
    settlements : UTM x, y (m) of real towns and centres, kept on gentle ground.
    """
    transform, width, height = grid_for(resolution_m)
    heights = np.empty((height, width), np.float32)
    with rasterio.open(coarse_path) as src:
        reproject(
            src.read(1).astype(np.float32),
            heights,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=src.nodata,
            dst_transform=transform,
            dst_crs=UTM_CRS,
            resampling=Resampling.cubic,
            num_threads=2,
        )
    band = {"alpha": BAND_ALPHA, "longest_m": BAND_LONGEST_M, "shortest_m": BAND_SHORTEST_M}
    mean_abs = np.sqrt(2 / np.pi)  # E|n| of a unit normal: keeps the folds zero-mean
    detail = np.zeros_like(heights)
    for stream, weight in ((1, VALLEY_FOLD_M), (2, -RIDGE_FOLD_M)):
        folded = _spectral_field(heights.shape, resolution_m, seed, stream, **band)
        np.abs(folded, out=folded)
        folded -= mean_abs
        folded *= weight
        detail += folded
        del folded
    rough = _spectral_field(
        heights.shape, resolution_m, seed, 3, alpha=ROUGH_ALPHA, longest_m=ROUGH_LONGEST_M
    )
    rough *= ROUGH_SIGMA_M
    detail += rough
    del rough
    scale = heights * RELIEF_PER_M
    np.clip(scale, *RELIEF_SCALE_RANGE, out=scale)
    detail *= scale
    del scale
    if settlements is not None:
        _calm_settlements(detail, transform, *settlements)
    heights += detail
    del detail
    _squash(heights, TOP_KNEE_M, TOP_LIMIT_M)
    _squash(heights, FLOOR_KNEE_M, FLOOR_LIMIT_M)
    np.rint(heights, out=heights)  # whole metres, as stored (int16, like SRTM)
    return Dem(heights, transform)


def write_dem(dem: Dem, path: Path, *, description: str) -> None:
    """Write the DEM as a tiled, DEFLATE-compressed int16 GeoTIFF tagged SYNTHETIC.

    Whole metres in int16 (as SRTM) take a third of the space of float32.
    """
    profile = {
        "driver": "GTiff",
        "dtype": "int16",
        "width": dem.heights.shape[1],
        "height": dem.heights.shape[0],
        "count": 1,
        "crs": UTM_CRS,
        "transform": dem.transform,
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "predictor": 2,
        "num_threads": "ALL_CPUS",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dem.heights.astype(np.int16), 1)
        dst.update_tags(SYNTHETIC="yes", DESCRIPTION=description)
        dst.set_band_description(1, "elevation (m), SYNTHETIC")
        dst.update_tags(1, UNITS="m")
