"""Village populations from a gridded population count (WorldPop, GHSL-POP).

Each village gets the people of the grid cells nearest to it within its commune: the commune is
split into the Voronoi cells of its villages, each clipped to the commune polygon, and the grid
is summed over each part (a grid cell counts for the part holding its centre; villages sharing
one position share their part equally). Optionally the villages of each commune are scaled so
that they add up to the commune's stored population (census totals), keeping the grid's spatial
pattern. The grid must hold people per cell (WorldPop "ppp", GHSL "POP"), in any CRS. Villages
whose part holds no grid value (outside the grid, e.g. another province's, or all nodata) are
left out, keeping their stored population, and counted; a commune with such villages is not
scaled (its total would be spread over only some of its villages). Pure: no Flask, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.windows import Window, from_bounds

from registry.errors import ValidationError


@dataclass
class PopulationResult:
    """Each village's population, and one report row per commune."""

    populations: dict[str, int]
    communes: list[dict[str, Any]] = field(default_factory=list)
    #: Villages left as they were, per commune: their part holds no grid value.
    outside_grid: dict[str, int] = field(default_factory=dict)


def _bad_raster(reason: str) -> ValidationError:
    return ValidationError(
        "the raster is not a population grid", details=[{"field": "file", "reason": reason}]
    )


def village_parts(villages: gpd.GeoDataFrame, communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Each village's Voronoi cell within its commune (``code``, ``commune_code``, polygon);
    villages at one position get the same ``part`` number (``shared`` says by how many)."""
    parts: list[dict[str, Any]] = []
    polygons = dict(zip(communes["code"], communes.geometry, strict=True))
    for commune_code, group in villages.groupby("commune_code", sort=True):
        polygon = polygons[commune_code]
        xy = np.array([(p.x, p.y) for p in group.geometry])
        unique, inverse = np.unique(xy, axis=0, return_inverse=True)
        if len(unique) == 1:
            cells = [polygon]
        else:
            regions = shapely.voronoi_polygons(
                shapely.MultiPoint(unique), extend_to=polygon, ordered=True
            )
            cells = [cell.intersection(polygon) for cell in regions.geoms]
        shared = np.bincount(inverse.ravel())
        first_part = len(parts) and parts[-1]["part"] + 1
        for code, i in zip(group["code"], inverse.ravel(), strict=True):
            parts.append(
                {
                    "code": code,
                    "commune_code": commune_code,
                    "part": first_part + int(i),
                    "shared": int(shared[i]),
                    "geometry": cells[i],
                }
            )
    return gpd.GeoDataFrame(parts, geometry="geometry", crs=villages.crs)


def village_populations(
    villages: gpd.GeoDataFrame,
    communes: gpd.GeoDataFrame,
    raster: Path,
    *,
    scale_to_commune_totals: bool = False,
) -> PopulationResult:
    """Population of each village from the grid over its Voronoi part of its commune.

    Parameters
    ----------
    villages : GeoDataFrame
        ``code``, ``commune_code`` and points, lon/lat.
    communes : GeoDataFrame
        ``code``, ``population`` (stored total) and polygons, lon/lat.
    raster : Path
        People per cell (GeoTIFF); nodata and NaN count as nobody.
    scale_to_commune_totals : bool
        Scale each commune's villages to add up to its stored population.

    Raises
    ------
    ValidationError
        A raster without a CRS, with negative counts, or without any value over the communes.
    """
    parts = village_parts(villages, communes)
    try:
        src = rasterio.open(raster)
    except rasterio.errors.RasterioIOError as exc:
        raise _bad_raster(f"{raster.name}: {exc}") from None
    with src:
        if src.crs is None:
            raise _bad_raster(f"{raster.name} has no coordinate reference system")
        projected = parts.to_crs(src.crs)
        window = (
            from_bounds(*projected.total_bounds, transform=src.transform)
            .round_offsets()
            .round_lengths()
        )
        try:
            window = window.intersection(Window(0, 0, src.width, src.height))
        except rasterio.errors.WindowError:
            raise _bad_raster(f"{raster.name} does not cover the communes") from None
        band = src.read(1, window=window, masked=True, boundless=False)
        transform = src.window_transform(window)
    values = np.ma.filled(band.astype(np.float64), np.nan)
    if np.any(values[np.isfinite(values)] < 0):
        raise _bad_raster(f"{raster.name} has negative values: not people per cell")
    unique = projected.drop_duplicates("part")
    ids = rasterize(
        (
            (geom, part + 1)
            for part, geom in zip(unique["part"], unique.geometry, strict=True)
            if not geom.is_empty
        ),
        out_shape=values.shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )
    valid = np.isfinite(values) & (ids > 0)
    if not valid.any():
        raise _bad_raster(f"{raster.name} has no population value over the communes")
    size = int(parts["part"].max()) + 2
    sums = np.bincount(ids[valid], weights=values[valid], minlength=size)
    cells = np.bincount(ids[valid], minlength=size)
    raw = dict(
        zip(parts["code"], sums[parts["part"] + 1] / parts["shared"].to_numpy(), strict=True)
    )
    parts["covered"] = cells[parts["part"] + 1] > 0
    result = PopulationResult(populations={})
    totals = dict(zip(communes["code"], communes["population"], strict=True))
    for commune_code, group in parts.groupby("commune_code", sort=True):
        outside = int((~group["covered"]).sum())
        if outside:
            result.outside_grid[commune_code] = outside
        codes = list(group.loc[group["covered"], "code"])
        if not codes:
            continue
        grid = np.array([raw[c] for c in codes])
        stored = totals.get(commune_code)
        factor = None
        if scale_to_commune_totals and stored is not None and not outside:
            factor = stored / grid.sum() if grid.sum() > 0 else None
            target = (
                grid * factor if factor is not None else np.full(len(codes), stored / len(codes))
            )
            people = _round_to_total(target, int(stored))
        else:
            people = np.rint(grid).astype(int)
        result.populations.update(zip(codes, (int(p) for p in people), strict=True))
        result.communes.append(
            {
                "commune": commune_code,
                "villages": len(codes),
                "villages_outside_grid": outside,
                "grid_population": round(float(grid.sum()), 1),
                "stored_population": stored,
                "scale": None if factor is None else round(float(factor), 4),
                "villages_population": int(people.sum()),
            }
        )
    return result


def _round_to_total(values: np.ndarray, total: int) -> np.ndarray:
    """Whole numbers near ``values`` that add up to ``total`` (largest remainders first).

    >>> _round_to_total(np.array([1.5, 1.5, 1.0]), 4).tolist()
    [2, 1, 1]
    """
    floors: np.ndarray = np.floor(values).astype(int)
    short = total - int(floors.sum())
    order = np.argsort(-(values - floors), kind="stable")
    floors[order[:short]] += 1  # values add up to total, so 0 <= short <= len(values)
    return floors
