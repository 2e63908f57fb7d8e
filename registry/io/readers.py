"""File readers: each returns ``{layer: [row dict, ...]}`` or raises ValidationError."""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio

from registry.errors import ValidationError
from registry.io.opencellid import read_opencellid
from registry.models import BY_LAYER

Layers = dict[str, list[dict[str, Any]]]
LON_NAMES = ("lon", "longitude", "lng", "x")
LAT_NAMES = ("lat", "latitude", "y")


def _bad_file(fmt: str, reason: str) -> ValidationError:
    return ValidationError(f"the file cannot be read as {fmt}",
                           details=[{"field": "file", "reason": reason}])


def _layer_name(name: str | None, fmt: str) -> str:
    if name is None:
        raise ValidationError(f"a {fmt} file holds one layer: say which",
                              details=[{"field": "layer", "reason": "is required"}])
    if name not in BY_LAYER:
        raise ValidationError("unknown layer", details=[
            {"field": "layer", "reason": f"{name!r} is not one of {', '.join(BY_LAYER)}"}])
    return name


def _plain(value: Any) -> Any:
    """A pandas/numpy cell as a plain Python value (missing → None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime):
        return value
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a (Geo)DataFrame as plain dicts, the geometry under ``geometry``."""
    columns = [c for c in frame.columns if c != "geometry"]
    geometry = frame["geometry"] if "geometry" in frame.columns else None
    rows = []
    for i, values in enumerate(frame[columns].itertuples(index=False)):
        row = {c: _plain(v) for c, v in zip(columns, values, strict=True)}
        if geometry is not None and geometry.iloc[i] is not None:
            row["geometry"] = geometry.iloc[i]
        rows.append(row)
    return rows


def read_geojson(data: bytes, layer: str | None) -> Layers:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, huge numbers, deep nesting
        raise _bad_file("GeoJSON", str(exc)[:200]) from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        raise _bad_file("GeoJSON", "expected a FeatureCollection with a features array")
    named = doc.get("name") if isinstance(doc.get("name"), str) else None
    name = _layer_name(layer or named, "GeoJSON")
    rows = []
    for i, feature in enumerate(doc["features"], start=1):
        if not isinstance(feature, dict) or not isinstance(feature.get("properties") or {}, dict):
            raise _bad_file("GeoJSON", f"feature {i} is not a Feature object")
        row = dict(feature.get("properties") or {})
        if feature.get("geometry") is not None:
            row["geometry"] = feature["geometry"]
        if "code" not in row and feature.get("id") is not None:
            row["code"] = str(feature["id"])
        rows.append(row)
    return {name: rows}


def _undefused(value: str | None) -> str | None:
    """Undo the apostrophe our CSV export puts before text that looks like a formula."""
    if value and len(value) > 1 and value[0] == "'" and value[1] in "=+-@\t\r":
        return value[1:]
    return value


def read_csv(data: bytes, layer: str | None) -> Layers:
    """CSV with a header; points from lon/lat columns, other shapes from a WKT ``geometry``."""
    name = _layer_name(layer, "CSV")
    try:
        text = data.decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        fields = reader.fieldnames or []
        raw_rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _bad_file("CSV", str(exc)) from None
    if not fields:
        raise _bad_file("CSV", "no header row")
    lower = {f.strip().lower(): f for f in fields}
    lon = next((lower[n] for n in LON_NAMES if n in lower), None)
    lat = next((lower[n] for n in LAT_NAMES if n in lower), None)
    rows = []
    for raw in raw_rows:
        if None in raw:
            raise _bad_file("CSV", f"line {reader.line_num}: more values than header columns")
        row = {k.strip(): _undefused(v) for k, v in raw.items() if k not in (lon, lat)}
        if lon and lat:
            try:
                row["geometry"] = {"type": "Point",
                                   "coordinates": [float(raw[lon]), float(raw[lat])]}
            except (TypeError, ValueError):
                row["geometry"] = f"POINT ({raw[lon]} {raw[lat]})"  # reported as unreadable
        rows.append(row)
    return {name: rows}


def read_gpkg(data: bytes, layer: str | None) -> Layers:
    """Every registry layer found in the GeoPackage (or only ``layer``)."""
    with tempfile.NamedTemporaryFile(suffix=".gpkg") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            names = [str(n) for n, _ in pyogrio.list_layers(tmp.name)]
        except Exception as exc:  # GDAL raises its own error types for non-GeoPackage bytes
            raise _bad_file("GeoPackage", str(exc).replace(tmp.name, "the file")) from None
        wanted = [_layer_name(layer, "GeoPackage")] if layer else [n for n in names
                                                                    if n in BY_LAYER]
        if not wanted or any(n not in names for n in wanted):
            raise _bad_file("GeoPackage", f"no registry layer in it (layers: {', '.join(names)})")
        layers: Layers = {}
        for name in wanted:
            try:
                frame = pyogrio.read_dataframe(tmp.name, layer=name)
            except Exception as exc:
                raise _bad_file("GeoPackage", f"layer {name}: {exc}") from None
            layers[name] = frame_rows(frame)
        return layers


FORMATS: dict[str, Callable[[bytes, str | None], Layers]] = {
    "geojson": read_geojson, "csv": read_csv, "gpkg": read_gpkg, "opencellid": read_opencellid}
SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".gpkg": "gpkg"}


def read_layers(data: bytes, *, fmt: str | None = None, filename: str | None = None,
                layer: str | None = None) -> Layers:
    """Read a file's bytes; the format comes from ``fmt`` or else the file name's suffix."""
    if fmt is None and filename:
        fmt = SUFFIXES.get(Path(filename).suffix.lower())
    if fmt not in FORMATS:
        raise ValidationError("unknown import format", details=[
            {"field": "format", "reason": f"must be one of {', '.join(FORMATS)}"}])
    return FORMATS[fmt](data, layer)
