"""Terrain: DEM loading (GeoTIFF, SRTM .hgt), mosaics, reprojection, profiles.

A `Dem` is a float32 elevation grid (metres, NaN = no data) with a north-up
affine transform and a CRS. Radio work happens in a metric CRS (default the
UTM zone of Lai Châu, EPSG:32648). Voids and missing tiles are never read as
sea level: `load_dem` either raises `DemVoidError` or fills them by
interpolation with a logged warning.

Earth curvature: profiles add the earth bulge d1 d2 / (2 k R) with the
effective earth-radius factor k = 4/3 (median refractivity gradient of the
standard atmosphere, ITU-R P.453 / P.834) and R = 6371 km.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from numpy.typing import ArrayLike
from rasterio.crs import CRS
from rasterio.fill import fillnodata
from rasterio.warp import Resampling, calculate_default_transform, reproject
from rasterio.windows import Window

from registry.errors import ValidationError

logger = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_000.0  # mean Earth radius, ITU-R P.452 / P.1812
K_FACTOR = 4.0 / 3.0  # median effective earth-radius factor, ITU-R P.453 / P.834
WORKING_CRS = "EPSG:32648"  # WGS 84 / UTM zone 48N (Lai Châu)
HGT_VOID = -32768  # SRTM void value
_HGT_NAME = re.compile(r"^([NS])(\d{2})([EW])(\d{3})$", re.IGNORECASE)
_HGT_SIZES = {3601: "1 arc-second", 1201: "3 arc-second"}


class DemVoidError(ValidationError):
    """The DEM has cells without data (voids or missing tiles) and filling was not asked for."""


def apply_transform(transform: Affine, u: ArrayLike, v: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``transform @ (u, v)`` on arrays: (x, y) of (col, row), or the inverse's (col, row)."""
    # affine maps arrays as well, but its annotations admit only tuples of floats
    x, y = transform @ (u, v)  # type: ignore[operator]
    return np.asarray(x), np.asarray(y)


class _Grid:
    """Georeference helpers shared by `Dem` and `DemFile` (both have `transform` and `shape`)."""

    transform: Affine
    shape: tuple[int, int]

    @property
    def cell_size(self) -> tuple[float, float]:
        """(x, y) cell size in CRS units, both positive."""
        return self.transform.a, -self.transform.e

    def cell_index(self, x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, col) of points, in units of cells from the first cell centre."""
        col, row = apply_transform(
            ~self.transform, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        )
        return row - 0.5, col - 0.5

    def _clip(
        self, row_off: int, col_off: int, rows: int, cols: int
    ) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
        """(grid slices, window slices) of the part of a window inside the grid; None if none."""
        r_lo, r_hi = max(row_off, 0), min(row_off + rows, self.shape[0])
        c_lo, c_hi = max(col_off, 0), min(col_off + cols, self.shape[1])
        if r_lo >= r_hi or c_lo >= c_hi:
            return None
        return (
            (slice(r_lo, r_hi), slice(c_lo, c_hi)),
            (slice(r_lo - row_off, r_hi - row_off), slice(c_lo - col_off, c_hi - col_off)),
        )


@dataclass(frozen=True, eq=False)
class Dem(_Grid):
    """Elevation grid with its georeference.

    Parameters
    ----------
    elevation_m : numpy.ndarray
        2D elevations in metres; NaN marks no data. Stored as a private
        read-only float32 copy, so the caller's array is never shared.
    transform : affine.Affine
        North-up, unrotated transform of the cell corners.
    crs : rasterio.crs.CRS or str
        Coordinate reference system.
    """

    elevation_m: np.ndarray
    transform: Affine
    crs: CRS

    def __post_init__(self) -> None:
        elevation = np.array(self.elevation_m, dtype=np.float32, order="C")
        if elevation.ndim != 2:
            raise ValueError("elevation_m must be 2D")
        elevation.flags.writeable = False
        _check_north_up(self.transform)
        object.__setattr__(self, "elevation_m", elevation)
        object.__setattr__(self, "crs", CRS.from_user_input(self.crs))

    @property
    def shape(self) -> tuple[int, int]:  # type: ignore[override]
        """(rows, columns)."""
        rows, cols = self.elevation_m.shape
        return rows, cols

    @cached_property
    def fingerprint(self) -> str:
        """Hash identifying the elevations, transform and CRS (for cache keys)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(self.elevation_m.tobytes())
        return _finish_fingerprint(h, self.transform, self.crs)

    def read(self, row_off: int, col_off: int, rows: int, cols: int) -> np.ndarray:
        """Elevations of a window of cells as a new float32 array, NaN outside the grid."""
        window = np.full((rows, cols), np.nan, dtype=np.float32)
        clipped = self._clip(row_off, col_off, rows, cols)
        if clipped is not None:
            window[clipped[1]] = self.elevation_m[clipped[0]]
        return window


@dataclass(frozen=True, eq=False)
class DemFile(_Grid):
    """A DEM GeoTIFF read window by window, for grids too large to hold in memory.

    The file must already be in the working (metric) CRS; its nodata cells read
    as NaN. Only the path travels when the handle is sent to another process
    (with the fingerprint, once computed), and each `read` opens the file, so a
    Dask worker reads just the windows its tasks need.

    Parameters
    ----------
    path : str or pathlib.Path
        GeoTIFF (best tiled, so that windows read few blocks).
    """

    path: Path
    transform: Affine = field(init=False)
    crs: CRS = field(init=False)
    shape: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).absolute())  # workers may run elsewhere
        with rasterio.open(self.path) as src:
            _check_north_up(src.transform)
            object.__setattr__(self, "transform", src.transform)
            object.__setattr__(self, "crs", src.crs)
            object.__setattr__(self, "shape", (src.height, src.width))

    @cached_property
    def fingerprint(self) -> str:
        """Same hash as `Dem.fingerprint` of the file's grid, computed strip by strip."""
        h = hashlib.blake2b(digest_size=16)
        with rasterio.open(self.path) as src:
            strip = max(src.block_shapes[0][0], 1)
            for row in range(0, src.height, strip):
                window = Window(0, row, src.width, min(strip, src.height - row))
                h.update(_masked_float32(src.read(1, window=window, masked=True)).tobytes())
        return _finish_fingerprint(h, self.transform, self.crs)

    def read(self, row_off: int, col_off: int, rows: int, cols: int) -> np.ndarray:
        """Elevations of a window of cells as a float32 array, NaN outside the grid."""
        window = np.full((rows, cols), np.nan, dtype=np.float32)
        clipped = self._clip(row_off, col_off, rows, cols)
        if clipped is not None:
            (r, c), _ = clipped
            with rasterio.open(self.path) as src:
                band = src.read(
                    1,
                    window=Window(c.start, r.start, c.stop - c.start, r.stop - r.start),
                    masked=True,
                )
            window[clipped[1]] = _masked_float32(band)
        return window


#: Anything coverage can read elevations from: an in-memory grid or a GeoTIFF on disk.
DemSource = Dem | DemFile


def _check_north_up(t: Affine) -> None:
    if t.b != 0.0 or t.d != 0.0 or t.a <= 0.0 or t.e >= 0.0:
        raise ValueError("a north-up, unrotated transform is required")


def _masked_float32(band: np.ma.MaskedArray) -> np.ndarray:
    return np.ma.filled(band.astype(np.float32), np.nan)


def _finish_fingerprint(h: hashlib.blake2b, transform: Affine, crs: CRS) -> str:
    h.update(repr(tuple(transform)[:6]).encode())
    h.update(crs.to_wkt().encode())
    return h.hexdigest()


@dataclass(frozen=True)
class TerrainProfile:
    """Terrain sampled along a straight path.

    Attributes
    ----------
    distance_m : numpy.ndarray
        Horizontal distance from the start, metres.
    elevation_m : numpy.ndarray
        Ground elevation (bilinear), metres.
    bulge_m : numpy.ndarray
        Earth bulge d1 d2 / (2 k R) at each point, metres.
    """

    distance_m: npt.NDArray[np.float64]
    elevation_m: npt.NDArray[np.float64]
    bulge_m: npt.NDArray[np.float64]

    @property
    def effective_m(self) -> npt.NDArray[np.float64]:
        """Elevation plus earth bulge: the heights to use for line of sight and diffraction."""
        return self.elevation_m + self.bulge_m


def earth_bulge_m(
    d1_m: ArrayLike,
    d2_m: ArrayLike,
    k_factor: float = K_FACTOR,
    earth_radius_m: float = EARTH_RADIUS_M,
) -> np.ndarray:
    """Height of the earth bulge above the chord of a path, d1 d2 / (2 k R).

    Examples
    --------
    >>> round(float(earth_bulge_m(10_000.0, 10_000.0)), 2)
    5.89
    """
    return np.asarray(np.asarray(d1_m) * np.asarray(d2_m) / (2.0 * k_factor * earth_radius_m))


def read_hgt(path: str | Path) -> Dem:
    """Read one SRTM .hgt tile from disk; see `parse_hgt`."""
    path = Path(path)
    return parse_hgt(path.name, path.read_bytes())


def parse_hgt(name: str, data: bytes) -> Dem:
    """Parse one SRTM/NASADEM .hgt tile (big-endian int16, georeference from the file name).

    N22E103.hgt covers latitudes 22-23° N and longitudes 103-104° E; 3601 x
    3601 samples for 1″ tiles, 1201 x 1201 for 3″. Samples are cell centres
    on whole-degree edges, so the grid extends half a cell past the tile.
    Voids (-32768) become NaN.

    Parameters
    ----------
    name : str
        Tile file name; it must start like N22E103 (NASADEM's n22e103 too).
    data : bytes
        The file's content.

    Returns
    -------
    Dem
        The tile in EPSG:4326.

    Raises
    ------
    ValidationError
        If the name is not a tile name or the size is not 3601² or 1201² samples.
    """
    match = _HGT_NAME.match(name.split(".")[0])
    if match is None:
        raise ValidationError(
            f"{name}: not an SRTM tile name",
            details=[{"field": "file", "reason": f"{name}: expected a name like N22E103.hgt"}],
        )
    size = math.isqrt(len(data) // 2)
    if len(data) % 2 or size * size * 2 != len(data) or size not in _HGT_SIZES:
        raise ValidationError(
            f"{name}: not an .hgt tile of a known size (3601² or 1201² samples)",
            details=[
                {
                    "field": "file",
                    "reason": f"{name}: {len(data)} bytes is neither 3601² nor 1201² "
                    "big-endian 16-bit samples (1″ or 3″ SRTM)",
                }
            ],
        )
    raw = np.frombuffer(data, dtype=">i2").reshape(size, size)
    lat = int(match[2]) * (1 if match[1].upper() == "N" else -1)
    lon = int(match[4]) * (1 if match[3].upper() == "E" else -1)
    res = 1.0 / (size - 1)
    elevation = raw.astype(np.float32)
    elevation[raw == HGT_VOID] = np.nan
    transform = Affine(res, 0.0, lon - res / 2, 0.0, -res, lat + 1 + res / 2)
    return Dem(elevation, transform, CRS.from_epsg(4326))


def _read_raster(path: Path) -> Dem:
    with rasterio.open(path) as src:
        return Dem(_masked_float32(src.read(1, masked=True)), src.transform, src.crs)


def mosaic_dems(dems: Sequence[Dem]) -> Dem:
    """Combine aligned DEMs of one CRS and cell size into one grid.

    The result spans the union of the inputs; where they overlap the first
    non-NaN value wins; cells no input covers (missing tiles) are NaN.

    Parameters
    ----------
    dems : sequence of Dem
        Same CRS, same cell size, grids aligned to whole cells.

    Returns
    -------
    Dem
    """
    if not dems:
        raise ValueError("no DEM to mosaic")
    first = dems[0]
    dx, dy = first.cell_size
    for dem in dems[1:]:
        if dem.crs != first.crs or not np.allclose(dem.cell_size, (dx, dy), rtol=1e-9, atol=0):
            raise ValueError("DEMs to mosaic must share CRS and cell size")
    west = min(d.transform.c for d in dems)
    north = max(d.transform.f for d in dems)
    offsets = []
    for dem in dems:
        col = (dem.transform.c - west) / dx
        row = (north - dem.transform.f) / dy
        if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
            raise ValueError("DEMs to mosaic are not aligned to whole cells")
        offsets.append((round(row), round(col)))
    rows = max(r + d.shape[0] for (r, _), d in zip(offsets, dems, strict=True))
    cols = max(c + d.shape[1] for (_, c), d in zip(offsets, dems, strict=True))
    out = np.full((rows, cols), np.nan, dtype=np.float32)
    for (r, c), dem in zip(offsets, dems, strict=True):
        window = out[r : r + dem.shape[0], c : c + dem.shape[1]]
        np.copyto(window, dem.elevation_m, where=np.isnan(window))
    return Dem(out, Affine(dx, 0.0, west, 0.0, -dy, north), first.crs)


def fill_voids(dem: Dem) -> Dem:
    """Fill NaN cells by inverse-distance interpolation (GDAL FillNodata), with a warning.

    Raises
    ------
    DemVoidError
        If the DEM has no data at all.
    """
    voids = np.isnan(dem.elevation_m)
    n_voids = int(voids.sum())
    if n_voids == 0:
        return dem
    if n_voids == voids.size:
        raise DemVoidError("the DEM has no valid cell to interpolate from")
    filled = fillnodata(
        dem.elevation_m.copy(),
        mask=(~voids).astype(np.uint8),
        max_search_distance=float(max(dem.shape)),
        smoothing_iterations=0,
    )
    logger.warning(
        "filled %d DEM void cells (%.3f%% of the grid) by inverse-distance interpolation",
        n_voids,
        100.0 * n_voids / voids.size,
    )
    return Dem(filled, dem.transform, dem.crs)


def reproject_dem(dem: Dem, crs: str | CRS, *, resolution_m: float | None = None) -> Dem:
    """Reproject a DEM (bilinear) to another CRS with square cells.

    Parameters
    ----------
    dem : Dem
        Source DEM.
    crs : str or rasterio.crs.CRS
        Target CRS, e.g. "EPSG:32648".
    resolution_m : float, optional
        Target cell size in target CRS units; by default GDAL's suggestion
        (about the source resolution).

    Returns
    -------
    Dem
        Cells outside the source footprint are NaN (no data).
    """
    dst_crs = CRS.from_user_input(crs)
    rows, cols = dem.shape
    left, top = dem.transform.c, dem.transform.f
    right, bottom = dem.transform @ (cols, rows)
    transform, width, height = calculate_default_transform(
        dem.crs,
        dst_crs,
        cols,
        rows,
        left,
        bottom,
        right,
        top,
        resolution=resolution_m,
    )
    out = np.full((height, width), np.nan, dtype=np.float32)
    reproject(
        source=dem.elevation_m.copy(),
        destination=out,
        src_transform=dem.transform,
        src_crs=dem.crs,
        src_nodata=np.nan,
        dst_transform=transform,
        dst_crs=dst_crs,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    return Dem(out, transform, dst_crs)


def load_dem(
    sources: str | Path | Sequence[str | Path],
    *,
    crs: str | CRS | None = WORKING_CRS,
    resolution_m: float | None = None,
    voids: Literal["error", "fill"] = "error",
) -> Dem:
    """Read GeoTIFF or SRTM .hgt files, mosaic them, handle voids, reproject.

    Parameters
    ----------
    sources : path or sequence of paths
        GeoTIFFs (anything rasterio reads) or .hgt tiles, all in one CRS.
    crs : str, rasterio.crs.CRS or None
        Working CRS (default EPSG:32648); None keeps the source CRS.
    resolution_m : float, optional
        Target cell size; see `reproject_dem`.
    voids : {"error", "fill"}
        What to do with cells without data in the mosaic (SRTM voids, tiles
        missing from a rectangular mosaic): raise `DemVoidError`, or fill them
        by interpolation and log a warning.

    Returns
    -------
    Dem
    """
    paths = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(p) for p in sources]
    tiles = [read_hgt(p) if p.suffix.lower() == ".hgt" else _read_raster(p) for p in paths]
    dem = mosaic_dems(tiles)
    n_voids = int(np.isnan(dem.elevation_m).sum())
    if n_voids and voids == "error":
        raise DemVoidError(
            f"{n_voids} DEM cells have no data (voids or missing tiles); "
            "pass voids='fill' to interpolate them"
        )
    dem = fill_voids(dem)
    if crs is not None and (CRS.from_user_input(crs) != dem.crs or resolution_m is not None):
        dem = reproject_dem(dem, crs, resolution_m=resolution_m)
    return dem


def elevation_at(dem: Dem, x_m: ArrayLike, y_m: ArrayLike) -> np.ndarray:
    """Bilinear elevation at points (CRS units); NaN outside the grid or next to voids.

    Parameters
    ----------
    dem : Dem
    x_m, y_m : array_like
        Point coordinates in the DEM CRS.

    Returns
    -------
    numpy.ndarray
        Elevations in metres, float64, shaped like the broadcast inputs.
    """
    row, col = dem.cell_index(x_m, y_m)
    rows, cols = dem.shape
    inside = (row >= -0.5) & (row <= rows - 0.5) & (col >= -0.5) & (col <= cols - 0.5)
    r = np.clip(row, 0.0, rows - 1.0)
    c = np.clip(col, 0.0, cols - 1.0)
    r0 = np.minimum(np.floor(r).astype(np.intp), max(rows - 2, 0))
    c0 = np.minimum(np.floor(c).astype(np.intp), max(cols - 2, 0))
    r1 = np.minimum(r0 + 1, rows - 1)
    c1 = np.minimum(c0 + 1, cols - 1)
    fr = r - r0
    fc = c - c0
    # float32; only the sampled cells are widened, never the whole grid
    z: npt.NDArray[np.float32] = dem.elevation_m

    def at(rr: npt.NDArray[np.intp], cc: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
        return z[rr, cc].astype(np.float64)

    top = at(r0, c0) * (1.0 - fc) + at(r0, c1) * fc
    bottom = at(r1, c0) * (1.0 - fc) + at(r1, c1) * fc
    return np.where(inside, top * (1.0 - fr) + bottom * fr, np.nan)


def terrain_profile(
    dem: Dem,
    start_xy: tuple[float, float],
    end_xy: tuple[float, float],
    *,
    k_factor: float = K_FACTOR,
    earth_radius_m: float = EARTH_RADIUS_M,
) -> TerrainProfile:
    """Terrain between two points, sampled at the DEM resolution (bilinear).

    Samples are equally spaced, at most one cell (the smaller cell side)
    apart, and include both end points.

    Parameters
    ----------
    dem : Dem
    start_xy, end_xy : tuple of float
        End points in the DEM CRS.
    k_factor : float
        Effective earth-radius factor for the bulge (default 4/3).
    earth_radius_m : float
        Earth radius (default 6371 km).

    Returns
    -------
    TerrainProfile
    """
    (x0, y0), (x1, y1) = start_xy, end_xy
    length = math.hypot(x1 - x0, y1 - y0)
    n = max(2, math.ceil(length / min(dem.cell_size)) + 1)
    distance = np.linspace(0.0, length, n)
    frac = distance / length if length > 0 else np.zeros(n)
    elevation = elevation_at(dem, x0 + frac * (x1 - x0), y0 + frac * (y1 - y0))
    bulge = earth_bulge_m(distance, length - distance, k_factor, earth_radius_m)
    return TerrainProfile(distance, elevation, bulge)


def synthetic_dem(
    shape: tuple[int, int],
    *,
    cell_size_m: float = 30.0,
    seed: int = 0,
    relief_m: float = 2000.0,
    base_m: float = 200.0,
    hurst: float = 0.8,
    origin_xy: tuple[float, float] = (220_000.0, 2_530_000.0),
    crs: str | CRS = WORKING_CRS,
) -> Dem:
    """Seeded fractal (spectral synthesis) mountain terrain, clearly synthetic.

    Gaussian noise shaped in the Fourier domain to amplitude f^-(H+1) (a
    fractional Brownian surface with Hurst exponent H), scaled to
    [base_m, base_m + relief_m].

    Parameters
    ----------
    shape : tuple of int
        (rows, columns).
    cell_size_m : float
        Square cell size in metres.
    seed : int
        Random seed; the same seed gives the same terrain.
    relief_m, base_m : float
        Elevation range and minimum, metres.
    hurst : float
        Roughness: 0.5 rough, 0.9 smooth.
    origin_xy : tuple of float
        Upper-left corner in `crs` (default inside Lai Châu in UTM 48N).
    crs : str or rasterio.crs.CRS
        CRS of the grid.

    Returns
    -------
    Dem
    """
    rng = np.random.default_rng(seed)
    rows, cols = shape
    freq = np.hypot(np.fft.fftfreq(rows)[:, None], np.fft.rfftfreq(cols)[None, :])
    freq[0, 0] = np.inf
    amplitude = freq ** -(hurst + 1.0)
    spectrum = amplitude * (rng.standard_normal(freq.shape) + 1j * rng.standard_normal(freq.shape))
    surface = np.fft.irfft2(spectrum, s=shape)
    surface = (surface - surface.min()) / (surface.max() - surface.min())
    elevation = (base_m + relief_m * surface).astype(np.float32)
    x0, y0 = origin_xy
    return Dem(elevation, Affine(cell_size_m, 0.0, x0, 0.0, -cell_size_m, y0), crs)
