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

from registry import schemas
from registry.errors import ValidationError
from registry.io import measurements, uploads
from registry.io.opencellid import read_opencellid
from registry.models import BY_LAYER

Layers = dict[str, list[dict[str, Any]]]
LON_NAMES = ("lon", "longitude", "lng", "x")
LAT_NAMES = ("lat", "latitude", "y")


def _bad_file(fmt: str, reason: str) -> ValidationError:
    return ValidationError(
        f"the file cannot be read as {fmt}", details=[{"field": "file", "reason": reason}]
    )


def _layer_name(name: str | None, fmt: str) -> str:
    if name is None:
        raise ValidationError(
            f"a {fmt} file holds one layer: say which",
            details=[{"field": "layer", "reason": "is required"}],
        )
    if name not in BY_LAYER:
        raise ValidationError(
            "unknown layer",
            details=[{"field": "layer", "reason": f"{name!r} is not one of {', '.join(BY_LAYER)}"}],
        )
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
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
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
        row: dict[str, Any] = {
            k.strip(): _undefused(v) for k, v in raw.items() if k not in (lon, lat)
        }
        if lon and lat:
            try:
                row["geometry"] = {
                    "type": "Point",
                    "coordinates": [float(raw[lon]), float(raw[lat])],
                }
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
        wanted = (
            [_layer_name(layer, "GeoPackage")] if layer else [n for n in names if n in BY_LAYER]
        )
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


#: Columns every KML placemark has that are not registry fields (styling and time spans).
KML_COLUMNS = (
    "id",
    "description",
    "timestamp",
    "begin",
    "end",
    "altitudeMode",
    "tessellate",
    "extrude",
    "visibility",
    "drawOrder",
    "icon",
    "snippet",
)


#: Longest field name a shapefile (dBASE) keeps; longer names arrive cut to this.
DBF_NAME_LENGTH = 10


def _full_names(columns: Any, layer: str) -> dict[str, str]:
    """Registry field names for shapefile columns cut to 10 characters (``commune_co``) and for
    KML's placemark ``Name``."""
    fields = schemas.input_columns(BY_LAYER[layer])
    out = {"Name": "name"} if "name" in fields and "name" not in columns else {}
    for c in columns:
        matches = [f for f in fields if f.startswith(c)]
        if c not in fields and len(c) == DBF_NAME_LENGTH and len(matches) == 1:
            out[c] = matches[0]
    return out


def _zipped_layers(
    data: bytes, layer: str | None, fmt: str, suffixes: tuple[str, ...], main_suffix: str
) -> Layers:
    """Registry layers from the datasets (``main_suffix`` files) of a zip archive: each named
    after its layer (``villages.shp``, a KML folder ``villages``), or the one ``layer``."""
    layers: Layers = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in uploads.extract_zip(data, Path(tmp), suffixes):
            if path.suffix.lower() != main_suffix:
                continue
            try:
                found = [str(n) for n, _ in pyogrio.list_layers(path)]
                for name in found:
                    target = layer if layer and len(found) == 1 else name
                    frame = pyogrio.read_dataframe(path, layer=name)
                    if target in BY_LAYER and len(frame):
                        frame = frame.drop(columns=[c for c in KML_COLUMNS if c in frame])
                        frame = frame.rename(columns=_full_names(frame.columns, target)).drop(
                            columns=["Name"], errors="ignore"
                        )  # KML's, where no name field
                        layers.setdefault(target, []).extend(frame_rows(frame))
            except Exception as exc:  # GDAL's own error types
                raise _bad_file(fmt, f"{path.name}: {str(exc).replace(tmp, '')}") from None
    if not layers:
        raise _bad_file(
            fmt,
            f"no registry layer in it (name the {main_suffix} file or folder "
            f"after a layer: {', '.join(BY_LAYER)}, or say which layer)",
        )
    if layer and layer not in layers:
        _layer_name(layer, fmt)
        raise _bad_file(fmt, f"no layer {layer!r} in it (found {', '.join(layers)})")
    return {layer: layers[layer]} if layer else layers


def read_kmz(data: bytes, layer: str | None) -> Layers:
    """Google Earth's zipped KML; every KML file inside is read."""
    return _zipped_layers(data, layer, "KMZ", (".kml",), ".kml")


def read_shapefile(data: bytes, layer: str | None) -> Layers:
    """A zipped ESRI shapefile (.shp with its .shx, .dbf, .prj and .cpg)."""
    return _zipped_layers(
        data, layer, "zipped shapefile", (".shp", ".shx", ".dbf", ".prj", ".cpg"), ".shp"
    )


FORMATS: dict[str, Callable[[bytes, str | None], Layers]] = {
    "geojson": read_geojson,
    "csv": read_csv,
    "gpkg": read_gpkg,
    "opencellid": read_opencellid,
    "kmz": read_kmz,
    "shapefile": read_shapefile,
    **measurements.FORMATS,
}
SUFFIXES = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".csv": "csv",
    ".gpkg": "gpkg",
    ".kmz": "kmz",
    ".zip": "shapefile",
}
#: The format of content with no format or suffix to go by.
SNIFFED = {"json": "geojson", "text": "csv", "gpkg": "gpkg"}


def read_layers(
    data: bytes, *, fmt: str | None = None, filename: str | None = None, layer: str | None = None
) -> Layers:
    """Read a file's bytes; the format comes from ``fmt``, else the file name's suffix, else
    the content; the content must match it either way."""
    suffix = Path(filename or "").suffix.lower()
    if fmt is None:
        fmt = SUFFIXES.get(suffix) if suffix else SNIFFED.get(uploads.sniff(data))
    if fmt not in FORMATS:
        hint = (
            " (zip a shapefile's .shp, .shx, .dbf and .prj together)"
            if suffix in (".shp", ".dbf", ".shx")
            else ""
        )
        raise ValidationError(
            "unknown import format",
            details=[{"field": "format", "reason": f"must be one of {', '.join(FORMATS)}{hint}"}],
        )
    uploads.check_content(data, fmt)
    return FORMATS[fmt](data, layer)
