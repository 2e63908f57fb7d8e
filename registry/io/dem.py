"""Elevation tiles → the registry DEM: SRTM/NASADEM .hgt (1″ or 3″, zipped or not), Copernicus
GLO-30 and ALOS AW3D30 GeoTIFF tiles, or any GeoTIFF.

The tiles are mosaicked in longitude/latitude (``rasterio.merge`` onto the finest input's
cells: copied when all tiles share them, else bilinear), their voids filled by inverse-distance
interpolation (GDAL FillNodata) and counted, and the result sampled (bilinear, at each cell
centre) onto a square grid in the UTM zone of the area's centre, covering the area plus a
margin, with its edges on a fixed lattice: DEMs over a province and over it and its neighbour
have the same cells, with the same elevations (to float32 rounding), over the province. Tiles
that leave part of the area uncovered are refused with the names of the missing 1° tiles.
Pure functions: no Flask, no database.
"""

from __future__ import annotations

import math
import os
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.io import DatasetReader, MemoryFile
from rasterio.merge import merge
from rasterio.vrt import WarpedVRT
from rasterio.warp import Resampling, transform_bounds, transform_geom
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from registry import terrain
from registry.errors import ValidationError

WGS84 = CRS.from_epsg(4326)
#: Stages reported to the progress callback, in order.
STAGES = ("read tiles", "mosaic", "fill voids", "resample", "write")
#: Default margin kept around the area, metres: sites near the border see terrain beyond it.
DEFAULT_MARGIN_M = 5_000.0
#: DEM grids have their edges on multiples of this many cells (in the UTM zone's metres), so
#: that DEMs over different areas share their cells, and analysis grids of 1, 3, 5, 7, 15, 21
#: and 35 DEM cells (`COVERAGE_ANALYSIS_STEP`) stay aligned too.
GRID_SNAP_CELLS = 105
#: Largest zipped .hgt member read (a 1″ tile is 25.9 MB).
MAX_HGT_BYTES = 2 * 3601 * 3601


@dataclass(frozen=True)
class DemReport:
    """What an import built: the tiles, the grid and the voids it filled."""

    tiles: list[str]
    crs: str
    resolution_m: float
    shape: tuple[int, int]
    void_cells_filled: int
    void_share: float  # of the mosaic's cells
    bounds_lonlat: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tiles": self.tiles,
            "crs": self.crs,
            "resolution_m": self.resolution_m,
            "shape": list(self.shape),
            "void_cells_filled": self.void_cells_filled,
            "void_share": round(self.void_share, 6),
            "bounds_lonlat": [round(v, 6) for v in self.bounds_lonlat],
        }


def tile_name(lon_deg: int, lat_deg: int) -> str:
    """The SRTM name of the 1° tile whose south-west corner is (lon, lat).

    >>> tile_name(103, 22), tile_name(-70, -1)
    ('N22E103', 'S01W070')
    """
    return (
        f"{'N' if lat_deg >= 0 else 'S'}{abs(lat_deg):02d}"
        f"{'E' if lon_deg >= 0 else 'W'}{abs(lon_deg):03d}"
    )


def missing_tiles(footprints: Sequence[BaseGeometry], area: BaseGeometry) -> list[str]:
    """Names of the 1° tiles the area needs that the footprints (lon/lat) do not cover.

    A tile is missing when part of the area inside it lies outside every footprint (more than
    a millionth of a degree², to forgive rounding at tile edges).
    """
    covered = shapely.union_all(list(footprints))
    x0, y0, x1, y1 = area.bounds
    missing = []
    for lat in range(math.floor(y0), max(math.ceil(y1), math.floor(y0) + 1)):
        for lon in range(math.floor(x0), max(math.ceil(x1), math.floor(x0) + 1)):
            needed = area.intersection(box(lon, lat, lon + 1, lat + 1))
            if not needed.is_empty and needed.difference(covered).area > 1e-6:
                missing.append(tile_name(lon, lat))
    return missing


def utm_crs(lon_deg: float, lat_deg: float) -> CRS:
    """WGS 84 / UTM zone of a point (EPSG:326zz north, 327zz south).

    >>> utm_crs(103.2, 22.3).to_epsg(), utm_crs(-70.5, -1.0).to_epsg()
    (32648, 32719)
    """
    zone = min(max(math.floor((lon_deg + 180.0) / 6.0) + 1, 1), 60)
    return CRS.from_epsg((32600 if lat_deg >= 0 else 32700) + zone)


#: GeoTIFF members of a zip taken as tiles: ALOS AW3D30's surface model (beside its _MSK, _STK
#: and _QAI layers) and Copernicus DEM's (beside its _EDM, _FLM, _HEM and _WBM layers).
ZIPPED_TIFF_SUFFIXES = ("_dsm.tif", "_dem.tif")


def _bad_tile(name: str, reason: str) -> ValidationError:
    return ValidationError(f"{name}: {reason}", details=[{"field": "file", "reason": reason}])


def _sources(path: Path) -> list[tuple[str, bytes | str]]:
    """Each tile of a file or zip: (name, the bytes of an .hgt) or (name, a GDAL path)."""
    if not zipfile.is_zipfile(path):
        if path.name.lower().endswith(".hgt"):
            return [(path.name, path.read_bytes())]
        return [(path.name, str(path))]
    out: list[tuple[str, bytes | str]] = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = Path(info.filename).name
            if info.is_dir():
                continue
            if name.lower().endswith(".hgt"):
                if info.file_size > MAX_HGT_BYTES:
                    raise _bad_tile(name, f"{info.file_size} bytes is larger than a 1″ tile")
                out.append((name, archive.read(info)))
            elif name.lower().endswith(ZIPPED_TIFF_SUFFIXES):
                out.append((name, f"/vsizip/{path.resolve()}/{info.filename}"))
    if not out:
        raise _bad_tile(path.name, "no .hgt, *_DSM.tif or *_DEM.tif tile in the zip")
    return out


@contextmanager
def open_tiles(paths: Sequence[Path]) -> Iterator[list[tuple[str, DatasetReader]]]:
    """Each tile as an open dataset in lon/lat (a GeoTIFF in another CRS through a warped
    view), with its name; .hgt tiles are parsed by `terrain.parse_hgt`."""
    with ExitStack() as stack:
        opened: list[tuple[str, DatasetReader]] = []
        for name, source in (s for path in paths for s in _sources(path)):
            if isinstance(source, bytes):
                tile = terrain.parse_hgt(name, source)
                mem = stack.enter_context(MemoryFile())
                with mem.open(
                    driver="GTiff",
                    width=tile.shape[1],
                    height=tile.shape[0],
                    count=1,
                    dtype="float32",
                    crs=tile.crs,
                    transform=tile.transform,
                    nodata=np.nan,
                ) as dst:
                    dst.write(tile.elevation_m, 1)
                opened.append((name, stack.enter_context(mem.open())))
                continue
            try:
                src = stack.enter_context(rasterio.open(source))
            except rasterio.errors.RasterioIOError as exc:
                raise _bad_tile(name, f"not a GeoTIFF or .hgt tile ({exc})") from None
            if src.crs is None:
                raise _bad_tile(name, "the raster has no coordinate reference system")
            if src.crs != WGS84:
                src = stack.enter_context(WarpedVRT(src, crs=WGS84, resampling=Resampling.bilinear))
            opened.append((name, src))
        if not opened:
            raise ValidationError(
                "no elevation tile given", details=[{"field": "file", "reason": "is required"}]
            )
        yield opened


def _grid(area_utm: BaseGeometry, resolution_m: float, margin_m: float) -> tuple[Affine, int, int]:
    """A north-up grid of square cells over the area plus margin, its edges on multiples of
    `GRID_SNAP_CELLS` cells in the zone's metres: grids over different areas share cells."""
    snap = resolution_m * GRID_SNAP_CELLS
    x0, y0, x1, y1 = area_utm.buffer(margin_m).bounds
    left, right = math.floor(x0 / snap) * snap, math.ceil(x1 / snap) * snap
    bottom, top = math.floor(y0 / snap) * snap, math.ceil(y1 / snap) * snap
    width, height = round((right - left) / resolution_m), round((top - bottom) / resolution_m)
    return Affine(resolution_m, 0.0, left, 0.0, -resolution_m, top), width, height


def resample(
    grid: terrain.Dem, transform: Affine, shape: tuple[int, int], crs: CRS, strip_rows: int = 256
) -> np.ndarray:
    """Bilinear elevations of ``grid`` at the cell centres of a grid in ``crs``, by exact
    projection of each centre (strip by strip, to bound memory). A cell's value depends only on
    its position, never on the grid's extent (GDAL's warper sizes its kernel and approximates
    the projection per processing chunk, so the same cell may differ between two extents)."""
    rows, cols = shape
    out = np.empty(shape, dtype=np.float32)
    to_grid = Transformer.from_crs(crs, grid.crs, always_xy=True)
    col_x = transform.c + (np.arange(cols) + 0.5) * transform.a
    for start in range(0, rows, strip_rows):
        stop = min(start + strip_rows, rows)
        row_y = transform.f + (np.arange(start, stop) + 0.5) * transform.e
        x, y = np.meshgrid(col_x, row_y)
        lon, lat = to_grid.transform(x, y)
        out[start:stop] = terrain.elevation_at(grid, lon, lat)
    return out


def build_dem(
    paths: Sequence[Path],
    *,
    area: BaseGeometry | None,
    resolution_m: float = 30.0,
    margin_m: float = DEFAULT_MARGIN_M,
    progress: Callable[[str], None] | None = None,
) -> tuple[terrain.Dem, DemReport]:
    """Mosaic, void-fill and resample elevation tiles into one DEM in the area's UTM zone.

    Parameters
    ----------
    paths : sequence of Path
        .hgt files (or zips of them), GeoTIFF tiles, or any GeoTIFF with a CRS.
    area : shapely geometry or None
        The area to cover, lon/lat (the registry's communes); None: the tiles' extent.
    resolution_m : float
        Cell size of the result.
    margin_m : float
        Terrain kept around the area (within what the tiles cover).
    progress : callable, optional
        Called with each stage's name in `STAGES` as it ends.

    Raises
    ------
    ValidationError
        Unreadable tiles, or tiles that leave part of the area uncovered (naming the missing
        1° tiles), or a mosaic without any valid cell.
    """
    if not resolution_m > 0:
        raise ValidationError(
            "bad resolution", details=[{"field": "resolution_m", "reason": "must be > 0"}]
        )
    step = progress or (lambda _stage: None)
    with open_tiles(paths) as tiles:
        footprints = [box(*transform_bounds(src.crs, WGS84, *src.bounds)) for _, src in tiles]
        step(STAGES[0])
        extent = shapely.union_all(footprints)
        if area is not None:
            missing = missing_tiles(footprints, area)
            if missing:
                raise ValidationError(
                    f"the tiles do not cover the area: missing {', '.join(missing)}",
                    details=[
                        {"field": "file", "reason": f"tile {name} is missing"} for name in missing
                    ],
                )
        target = area if area is not None else extent
        centre = target.centroid
        crs = utm_crs(centre.x, centre.y)
        to_utm = transform_geom(WGS84, crs, shapely.geometry.mapping(target))
        transform, width, height = _grid(shapely.geometry.shape(to_utm), resolution_m, margin_m)
        bounds_utm = (
            transform.c,
            transform.f - height * resolution_m,
            transform.c + width * resolution_m,
            transform.f,
        )
        wanted = box(*transform_bounds(crs, WGS84, *bounds_utm, densify_pts=21))
        clip = wanted.intersection(extent).bounds
        finest = min((src for _, src in tiles), key=lambda src: abs(src.res[0]))
        res_deg = abs(finest.res[0])
        same = all(np.allclose(src.res, finest.res, rtol=1e-9) for _, src in tiles)
        # bounds on the finest tile's cell edges: equal tiles are copied cell for cell
        west, north = finest.transform.c, finest.transform.f
        left = west + math.floor((clip[0] - west) / res_deg - 2) * res_deg
        right = west + math.ceil((clip[2] - west) / res_deg + 2) * res_deg
        top = north + math.ceil((clip[3] - north) / res_deg + 2) * res_deg
        bottom = north + math.floor((clip[1] - north) / res_deg - 2) * res_deg
        ex0, ey0, ex1, ey1 = extent.bounds  # no padding past the tiles
        mosaic, mosaic_transform = merge(
            [src for _, src in tiles],
            bounds=(max(left, ex0), max(bottom, ey0), min(right, ex1), min(top, ey1)),
            res=res_deg,
            nodata=np.nan,
            dtype="float32",
            resampling=Resampling.nearest if same else Resampling.bilinear,
        )
        names = [name for name, _ in tiles]
    step(STAGES[1])
    grid = terrain.Dem(mosaic[0], mosaic_transform, WGS84)
    voids = np.isnan(grid.elevation_m)
    n_voids = int(voids.sum())
    share = n_voids / voids.size
    grid = terrain.fill_voids(grid)
    step(STAGES[2])
    out = resample(grid, transform, (height, width), crs)
    step(STAGES[3])
    dem = terrain.Dem(out, transform, crs)
    report = DemReport(
        tiles=sorted(names),
        crs=f"EPSG:{crs.to_epsg()}",
        resolution_m=float(resolution_m),
        shape=dem.shape,
        void_cells_filled=n_voids,
        void_share=share,
        bounds_lonlat=wanted.bounds,
    )
    return dem, report


def write_cog(dem: terrain.Dem, path: Path, *, tags: dict[str, str] | None = None) -> Path:
    """Write the DEM as a cloud-optimised GeoTIFF (tiled, DEFLATE, overviews) beside ``path``,
    then move it into place in one atomic rename (readers see the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.stem}.{uuid.uuid4().hex}{path.suffix}")
    try:
        with rasterio.open(
            staged,
            "w",
            driver="COG",
            width=dem.shape[1],
            height=dem.shape[0],
            count=1,
            dtype="float32",
            crs=dem.crs,
            transform=dem.transform,
            nodata=np.nan,
            compress="DEFLATE",
            predictor=3,
            blocksize=512,
            overview_resampling="average",
        ) as dst:
            dst.write(dem.elevation_m, 1)
            dst.update_tags(**(tags or {}))
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return path
