"""Exports of stored layers: GeoJSON, CSV (lon/lat for points, WKT otherwise), GeoPackage, KMZ."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import pandas as pd
import pyogrio
from sqlalchemy import Boolean, Float, Integer
from sqlalchemy.orm import Session

from registry import schemas, store
from registry.db import UtcDateTime
from registry.errors import ValidationError
from registry.models import BY_LAYER, LAYERS, Record, Spatial


def layer_frame(session: Session, model: type[Record]) -> pd.DataFrame:
    """All records of a layer as a GeoDataFrame (EPSG:4326), or a DataFrame without geometry."""
    records = store.list_records(session, model)
    rows = [schemas.to_properties(r) for r in records]
    columns = [*schemas.input_columns(model), "version", "created_at", "updated_at"]
    frame = pd.DataFrame(rows, columns=columns)
    # Types from the columns, not the data: an all-empty column stays numeric in the file.
    for name, column in schemas.input_columns(model).items():
        kind = column.type
        frame[name] = (
            pd.to_datetime(frame[name], utc=True, format="ISO8601")
            if isinstance(kind, UtcDateTime)
            else frame[name].astype(
                "Int64"
                if isinstance(kind, Integer)
                else "Float64"
                if isinstance(kind, Float)
                else "boolean"
                if isinstance(kind, Boolean)
                else "string"
            )
        )
    for name in ("created_at", "updated_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    frame["version"] = frame["version"].astype("Int64")
    if model.geometry_type is None:
        return frame
    shapes = [cast(Spatial, r).geom for r in records]  # a layer with a geometry type
    return gpd.GeoDataFrame(frame, geometry=shapes, crs="EPSG:4326")


def export_geojson(session: Session, layer: str) -> bytes:
    model = BY_LAYER[layer]
    records = store.list_records(session, model)
    doc = {
        "type": "FeatureCollection",
        "name": layer,
        "features": [schemas.to_feature(r) for r in records],
    }
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


#: Leading characters that make spreadsheets evaluate a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv(frame: pd.DataFrame) -> bytes:
    """CSV for spreadsheets: UTF-8 with a BOM (Excel then reads the diacritics), and text
    cells that would start a formula prefixed with an apostrophe."""

    def defuse(value: Any) -> Any:
        return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value

    return frame.map(defuse).to_csv(index=False).encode("utf-8-sig")


def export_csv(session: Session, layer: str) -> bytes:
    frame = layer_frame(session, BY_LAYER[layer])
    if isinstance(frame, gpd.GeoDataFrame):
        geoms = frame.geometry
        frame = pd.DataFrame(frame.drop(columns="geometry"))
        if BY_LAYER[layer].geometry_type == "Point":
            frame["lon"], frame["lat"] = geoms.x, geoms.y
        else:
            frame["geometry"] = geoms.to_wkt()
    return _csv(frame)


#: GeoPackage version written: 1.2 is read without warnings by every GDAL from 2.2 on (Debian
#: 12's GDAL 3.6 and its QGIS warn that 1.4, the newer GDALs' default, is "partially
#: supported"); the registry uses nothing newer.
GPKG_VERSION = "1.2"


def export_gpkg(
    session: Session, path: Path, *, models: Sequence[type[Record]] | None = None
) -> Path:
    """Write every layer (or ``models``) into one GeoPackage (QGIS opens it directly); returns
    ``path``. Date-times have milliseconds (``YYYY-MM-DDTHH:MM:SS.SSSZ``, GeoPackage 1.2)."""
    path.unlink(missing_ok=True)
    for model in LAYERS if models is None else models:
        frame = layer_frame(session, model)
        options: dict[str, Any] = {"layer": model.layer, "driver": "GPKG", "append": path.exists()}
        if not options["append"]:
            options["dataset_options"] = {"VERSION": GPKG_VERSION}
        if isinstance(frame, gpd.GeoDataFrame):
            options["geometry_type"] = model.geometry_type
        pyogrio.write_dataframe(frame, path, **options)
    return path


def export_kmz(session: Session, layer: str, path: Path) -> Path:
    """One layer as KMZ for Google Earth (attributes as KML ExtendedData); read back by the
    KMZ importer. Returns ``path``."""
    frame = layer_frame(session, BY_LAYER[layer])
    if not isinstance(frame, gpd.GeoDataFrame):
        raise ValidationError(
            "this layer has no geometry",
            details=[{"field": "layer", "reason": f"{layer} cannot be exported as KMZ; use CSV"}],
        )
    path.unlink(missing_ok=True)
    for name in ("created_at", "updated_at"):
        frame[name] = frame[name].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    pyogrio.write_dataframe(frame, path, layer=layer, driver="LIBKML")
    return path


def records_csv(rows: list[dict[str, Any]]) -> bytes:
    """Flat records (e.g. seller verdicts or KPI rows) as CSV."""
    return _csv(pd.DataFrame(rows))


def records_geojson(rows: list[dict[str, Any]]) -> bytes:
    """Flat records with ``lon``/``lat`` as a GeoJSON FeatureCollection of points."""
    features = [
        {
            "type": "Feature",
            "id": row.get("code"),
            "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
            "properties": {k: v for k, v in row.items() if k not in ("lon", "lat")},
        }
        for row in rows
    ]
    return json.dumps(
        {"type": "FeatureCollection", "features": features}, ensure_ascii=False
    ).encode("utf-8")
