"""Provinces: a new one from a file of commune polygons (`flask region init`).

The file (GeoJSON, GeoPackage, or anything GDAL reads) holds one polygon per commune with its
code and name; other fields are optional. Field names are the registry's (``code``, ``name``,
``type``, ``population``, ``area_km2``, ``admin_center_lon``, ``admin_center_lat``,
``before_merger``); ``fields`` maps them to the file's own names (e.g. ``{"code": "ma_xa"}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import store
from registry.errors import ConflictError, ValidationError
from registry.models import Commune

#: Commune fields read from the boundaries file, and whether each is required.
COMMUNE_FIELDS = {
    "code": True,
    "name": True,
    "type": False,
    "population": False,
    "area_km2": False,
    "admin_center_lon": False,
    "admin_center_lat": False,
    "before_merger": False,
}
#: Commune type when the file has none (most Vietnamese communes are rural xã).
DEFAULT_COMMUNE_TYPE = "Xã"
#: A new commune may overlap stored provinces by this share of its own area (boundaries
#: drawn from different sources disagree by a few metres along shared edges), no more.
OVERLAP_TOLERANCE_SHARE = 0.01


@dataclass(frozen=True)
class RegionReport:
    province: str
    communes: int
    population: int
    area_km2: float
    bounds: tuple[float, float, float, float]


def _field_error(field: str, reason: str) -> ValidationError:
    return ValidationError(
        f"boundaries file: {field} {reason}", details=[{"field": field, "reason": reason}]
    )


def read_boundaries(
    path: Path, *, fields: Mapping[str, str] | None = None, layer: str | None = None
) -> gpd.GeoDataFrame:
    """The file's communes in EPSG:4326 with the registry's field names."""
    fields = dict(fields or {})
    unknown = sorted(set(fields) - set(COMMUNE_FIELDS))
    if unknown:
        raise _field_error(
            unknown[0], f"is not a commune field; known: {', '.join(COMMUNE_FIELDS)}"
        )
    try:
        frame = gpd.read_file(path, layer=layer)
    except Exception as exc:  # GDAL raises several types for unreadable files
        raise _field_error("file", f"cannot be read as GeoJSON/GeoPackage: {exc}") from None
    if frame.crs is None:
        raise _field_error("file", "has no coordinate reference system")
    frame = frame.to_crs(4326)
    out: dict[str, Any] = {}
    for name, required in COMMUNE_FIELDS.items():
        source = fields.get(name, name)
        if source in frame.columns:
            out[name] = frame[source]
        elif required or name in fields:
            raise _field_error(
                name,
                f"is missing: no column {source!r} in the file (columns: "
                f"{', '.join(map(str, frame.columns))}); name it with --{name.replace('_', '-')}"
                "-field",
            )
    result = gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=4326)
    if "type" not in result:
        result["type"] = DEFAULT_COMMUNE_TYPE
    if "area_km2" not in result:
        utm = result.to_crs(result.estimate_utm_crs())
        result["area_km2"] = (utm.geometry.area / 1e6).round(2)
    if "population" not in result:
        result["population"] = 0  # `flask population import` fills villages; communes stay 0
    return result


def _overlaps(session: Session, new: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """Problems for new communes that overlap a stored province beyond the tolerance."""
    stored = list(store.province_boundaries(session))
    if not stored:
        return []
    others = gpd.GeoDataFrame(
        {"province": [p for p, _ in stored]}, geometry=[g for _, g in stored], crs=4326
    )
    utm = new.estimate_utm_crs()
    new_m, others_m = new.to_crs(utm), others.to_crs(utm)
    problems = []
    for i, geom in enumerate(new_m.geometry):
        hits = others_m[others_m.intersects(geom)]
        if hits.empty:
            continue
        shared = shapely.union_all(hits.geometry.intersection(geom).to_numpy()).area
        if shared > OVERLAP_TOLERANCE_SHARE * geom.area:
            provinces = ", ".join(sorted(set(hits["province"])))
            problems.append(
                {
                    "layer": "communes",
                    "row": i + 1,
                    "field": "geometry",
                    "reason": f"overlaps province {provinces} by {shared / 1e6:.2f} km²",
                }
            )
    return problems


def init_region(
    session: Session,
    name: str,
    boundaries: gpd.GeoDataFrame,
    *,
    actor: str,
) -> RegionReport:
    """Create province ``name`` and its communes, all or nothing.

    Refused when the province exists, when a commune code is already stored (in any
    province), when a commune overlaps a stored province, or when any row is invalid
    (every problem is listed; nothing is stored).
    """
    name = name.strip()
    if not name:
        raise _field_error("name", "is empty")
    if session.scalar(select(Commune.id).where(Commune.province == name).limit(1)):
        raise ConflictError(
            f"province {name!r} already exists; change its communes with `flask import`"
        )
    if boundaries.empty:
        raise _field_error("file", "holds no communes")
    codes = boundaries["code"].astype(str)
    taken = store.existing_codes(session, Commune, codes)
    problems: list[dict[str, Any]] = [
        {"layer": "communes", "row": i + 1, "field": "code", "reason": f"{c!r} is already stored"}
        for i, c in enumerate(codes)
        if c in taken
    ]
    problems += _overlaps(session, boundaries)
    if problems:
        raise ValidationError(
            f"province {name!r} not created: {len(problems)} problem(s); nothing was stored",
            details=problems,
        )
    rows = [
        {
            **{k: (None if pd.isna(v) else v) for k, v in row.items() if k != "geometry"},
            "code": str(row["code"]),
            "province": name,
            "synthetic": False,
            "geometry": row["geometry"],
        }
        for row in boundaries.to_dict("records")
    ]
    store.import_layers(session, {"communes": rows}, actor=actor, area_bbox=None)
    x0, y0, x1, y1 = (round(float(v), 5) for v in boundaries.total_bounds)
    return RegionReport(
        province=name,
        communes=len(rows),
        population=int(boundaries["population"].fillna(0).sum()),
        area_km2=round(float(boundaries["area_km2"].fillna(0).sum()), 1),
        bounds=(x0, y0, x1, y1),
    )
