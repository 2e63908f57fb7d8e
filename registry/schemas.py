"""Validation of input records, in one place, derived from the models' column constraints.

Every problem is reported as ``{"field": ..., "reason": ...}``; a record with any problem is
rejected whole. The same rules serve the API, the forms and every importer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import cache, partial
from types import MappingProxyType
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Boolean, Float, Integer, String, Text

from registry.area import Area
from registry.db import UtcDateTime
from registry.errors import ValidationError
from registry.models import Record

#: Time zone assumed for date-times given without one (Vietnam, UTC+07:00).
LOCAL_TZ = timezone(timedelta(hours=7))
#: 3GPP channel bandwidths: LTE (TS 36.101 Table 5.6-1) and NR FR1 (TS 38.101-1 Table 5.3.2-1).
BANDWIDTHS_MHZ = {
    "4G": (1.4, 3, 5, 10, 15, 20),
    "5G": (5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100),
}
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
#: Columns the registry maintains itself; ignored on input (exports carry them).
READ_ONLY = frozenset(
    {
        "id",
        "created_at",
        "updated_at",
        "version",
        "name_key",
        "geom",
        "min_lon",
        "min_lat",
        "max_lon",
        "max_lat",
    }
)
TRUE_WORDS = {"true", "1", "yes", "y", "t"}
INT32_MAX = 2**31 - 1  # every integer column is a 32-bit integer on PostgreSQL
YEARS = (1900, 2100)  # date-times outside these years are typing errors
#: Control characters (but tab, newline, carriage return) and unpaired UTF-16 surrogates.
BAD_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
FALSE_WORDS = {"false", "0", "no", "n", "f", ""}
#: A decimal number as query strings carry it (ASCII digits, optional sign, fraction, exponent).
NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
#: ``bbox=min_lon,min_lat,max_lon,max_lat``.
BBOX_PATTERN = f"^{NUMBER},{NUMBER},{NUMBER},{NUMBER}$"
#: Longest value of a text column that has no length of its own (``Text``), by field; a few
#: hundred products or merged communes fit, a pasted document does not.
TEXT_MAX_CHARS = {"products": 2_000, "before_merger": 1_000}
#: Longest value of any other unbounded text field.
DEFAULT_TEXT_MAX_CHARS = 1_000
#: Most vertices a geometry may have, by layer: a commune boundary surveyed at ~1 m along
#: ~100 km of border; a fibre route at ~10 m over 200 km; points have one.
MAX_VERTICES = {"communes": 100_000, "fibre_links": 20_000}
DEFAULT_MAX_VERTICES = 1
#: Unicode categories refused in names: format characters (Cf: bidi overrides such as U+202E,
#: zero-width spaces and joiners) and line/paragraph separators (Zl, Zp), which make one name
#: look like another or break the lines it is shown on.
NAME_BAD_CATEGORIES = frozenset({"Cf", "Zl", "Zp"})


@cache
def input_columns(model: type[Record]) -> Mapping[str, Any]:
    """The columns a client may set, by name: code and name first, then the table's order
    (read-only and cached: validation asks for them once per imported row)."""
    columns = [c for c in model.__table__.columns if c.name not in READ_ONLY]
    columns.sort(key=lambda c: {"code": 0, "name": 1}.get(c.name, 2))
    return MappingProxyType({c.name: c for c in columns})


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value.strip())


def _coerce(column: Any, value: Any) -> Any:
    """Convert one raw value (JSON or CSV text) to the column's Python type, or raise ValueError."""
    kind = column.type
    if isinstance(value, str) and not isinstance(kind, String | Text):
        value = value.strip()
    if isinstance(kind, Boolean):
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError("must be true or false")
    if isinstance(kind, Integer):
        return _integer(value)
    if isinstance(kind, Float):
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if not math.isfinite(number):
            raise ValueError("must be a number")
        return number
    if isinstance(kind, UtcDateTime):
        stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=LOCAL_TZ)
        if not YEARS[0] <= stamp.year <= YEARS[1]:
            raise ValueError(f"must be a date-time between the years {YEARS[0]} and {YEARS[1]}")
        return stamp.astimezone(UTC).replace(microsecond=0)
    if not isinstance(value, str):
        raise ValueError("must be text")
    text = _nfc(check_text(value))
    longest = max_chars(column)
    if len(text) > longest:
        raise ValueError(f"is longer than {longest} characters")
    if column.name == "name":
        check_name(text)
    return text


def max_chars(column: Any) -> int:
    """The longest text a column takes: its own length, else ``TEXT_MAX_CHARS``."""
    return column.type.length or TEXT_MAX_CHARS.get(column.name, DEFAULT_TEXT_MAX_CHARS)


def max_vertices(model: type[Record]) -> int:
    return MAX_VERTICES.get(model.layer, DEFAULT_MAX_VERTICES)


def check_name(value: str, field: str | None = None) -> str:
    """Refuse invisible format characters and line separators in a name (see
    ``NAME_BAD_CATEGORIES``); a ValueError, or a ValidationError naming ``field``."""
    bad = next((c for c in value if unicodedata.category(c) in NAME_BAD_CATEGORIES), None)
    if bad is None:
        return value
    label = " ".join(filter(None, (f"U+{ord(bad):04X}", unicodedata.name(bad, ""))))
    reason = f"must not contain invisible format or line-separator characters ({label})"
    if field is None:
        raise ValueError(reason)
    raise ValidationError(f"bad {field}", details=[{"field": field, "reason": reason}])


def _integer(value: Any) -> int:
    """An exact integer from an int, an integral float or decimal digits, within int32."""
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,12}(\.0*)?", value):
        number = int(value.split(".")[0])
    else:
        number = None
    if number is None or not -INT32_MAX <= number <= INT32_MAX:
        raise ValueError("must be an integer")
    return number


def check_text(value: str, field: str | None = None) -> str:
    """Refuse control characters and unpaired surrogates (databases reject or mangle them)."""
    if BAD_CHARACTERS.search(value):
        if field is None:
            raise ValueError("must not contain control characters")
        raise ValidationError(
            f"bad {field}",
            details=[{"field": field, "reason": "must not contain control characters"}],
        )
    return value


def check_json_types(model: type[Record], data: Mapping[str, Any]) -> None:
    """Refuse JSON values of the wrong type for their field (a quoted number, 1 for true): the
    API takes what its OpenAPI document says; text forms and CSV cells are converted instead."""
    errors = []
    for name, column in input_columns(model).items():
        value, kind = data.get(name), column.type
        if value is None:
            continue
        if isinstance(kind, Boolean):
            ok, wanted = isinstance(value, bool), "true or false"
        elif isinstance(kind, Integer | Float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            wanted = "a number"
        else:
            ok, wanted = isinstance(value, str), "text"
        if not ok:
            errors.append(
                {"field": name, "reason": f"must be {wanted} (JSON {type(value).__name__})"}
            )
    if errors:
        raise ValidationError(f"invalid {model.layer} record", details=errors)


def _check_constraints(column: Any, value: Any) -> str | None:
    info = column.info
    if "ge" in info and value < info["ge"]:
        return f"must be at least {info['ge']}"
    if "le" in info and value > info["le"]:
        return f"must be at most {info['le']}"
    if "choices" in info and value not in info["choices"]:
        return f"must be one of {', '.join(info['choices'])}"
    if "pattern" in info and not re.match(info["pattern"], value):
        return f"does not match the expected form {info['pattern']}"
    return None


def parse_geometry(raw: Any) -> BaseGeometry:
    """A shapely geometry from GeoJSON (dict), WKT (str) or a shapely object."""
    if isinstance(raw, BaseGeometry):
        geom = raw
    elif isinstance(raw, str):
        geom = shapely.from_wkt(raw)
    elif isinstance(raw, dict):
        geom = shape(raw)
    else:
        raise ValueError("must be a GeoJSON geometry object")
    return shapely.force_2d(geom)  # heights above ground are fields, not Z coordinates


def _check_geometry(model: type[Record], geom: BaseGeometry, area: Area | None) -> str | None:
    wanted = model.geometry_type
    if geom.is_empty:
        return "is empty"
    if geom.geom_type != wanted and not (wanted == "MultiPolygon" and geom.geom_type == "Polygon"):
        return f"must be a {wanted}, got a {geom.geom_type}"
    vertices, most = shapely.get_num_coordinates(geom), max_vertices(model)
    if vertices > most:
        return f"has {vertices} vertices; {model.layer} take at most {most}"
    if not shapely.is_valid(geom):
        return f"is invalid: {shapely.is_valid_reason(geom)}"
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    # Communes are exempt: they are the provinces' boundaries that make the area.
    outside = None if area is None or model.layer == "communes" or area.admits(geom) else area
    swapped = ""
    if outside is not None and outside.swapped_admits(geom):
        swapped = " (longitude and latitude look swapped)"
    if min_lon < -180 or max_lon > 180 or min_lat < -90 or max_lat > 90:
        return f"has coordinates outside longitude −180…180 / latitude −90…90{swapped}"
    if outside is not None:
        return f"lies outside {outside.name}{swapped}; set allow_outside_area to store it anyway"
    return None


def validate(
    model: type[Record],
    data: dict[str, Any],
    *,
    area_bbox: Area | tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    """Check and convert one whole record; raise ValidationError listing every problem.

    ``data`` holds property values and, for spatial layers, ``geometry`` (GeoJSON, WKT or
    shapely). ``area_bbox`` (an ``Area``, or a lon/lat box) must hold the geometry of every
    layer but communes (which make the area); None turns that check off.
    """
    area = Area.from_bbox(area_bbox) if isinstance(area_bbox, tuple) else area_bbox
    columns = input_columns(model)
    errors: list[dict[str, str]] = []
    clean: dict[str, Any] = {}
    spatial = model.geometry_type is not None
    for name in data:
        if name == "geometry" and not spatial and data[name] is not None:
            errors.append({"field": name, "reason": f"must be null: {model.layer} have none"})
        elif name not in columns and name not in READ_ONLY and name != "geometry":
            errors.append({"field": name, "reason": "is not a field of " + model.layer})
    for name, column in columns.items():
        value = data.get(name)
        if value is None or (
            isinstance(value, str) and not value.strip() and not isinstance(column.type, Boolean)
        ):
            if isinstance(column.type, Boolean):
                clean[name] = False
            elif column.nullable:
                clean[name] = None
            else:
                errors.append({"field": name, "reason": "is required"})
            continue
        try:
            value = _coerce(column, value)
        except (TypeError, ValueError, OverflowError) as exc:
            reason = str(exc) if str(exc).startswith("must ") else f"cannot be read: {exc}"
            errors.append({"field": name, "reason": reason})
            continue
        problem = _check_constraints(column, value)
        if problem:
            errors.append({"field": name, "reason": problem})
        else:
            clean[name] = value
    if "code" in clean and not CODE_PATTERN.match(clean["code"]):
        errors.append(
            {
                "field": "code",
                "reason": "must be 1–64 letters, digits or . _ : -, "
                "starting with a letter or digit",
            }
        )
    if model.layer == "sectors" and {"technology", "bandwidth_mhz"} <= clean.keys():
        allowed = BANDWIDTHS_MHZ[clean["technology"]]
        if clean["bandwidth_mhz"] not in allowed:
            tech = clean["technology"]
            errors.append(
                {
                    "field": "bandwidth_mhz",
                    "reason": f"must be a 3GPP {tech} bandwidth: {list(allowed)}",
                }
            )
    if spatial:
        raw = data.get("geometry")
        if raw is None:
            errors.append({"field": "geometry", "reason": "is required"})
        else:
            try:
                geom = parse_geometry(raw)
            except Exception as exc:  # shapely raises several types for malformed input
                errors.append({"field": "geometry", "reason": f"cannot be read: {exc}"})
            else:
                problem = _check_geometry(model, geom, area)
                if problem:
                    errors.append({"field": "geometry", "reason": problem})
                else:
                    clean["geom"] = MultiPolygon([geom]) if geom.geom_type == "Polygon" else geom
    if errors:
        raise ValidationError(f"invalid {model.layer} record", details=errors)
    return clean


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


def properties(model: type[Record], get: Callable[[str], Any]) -> dict[str, Any]:
    """A record's fields as JSON-ready values (with version and stamps, without geometry),
    read through ``get(column name)``: from a stored record, or from the values about to be
    bulk-inserted (so their audit entries are the same as the row path's)."""
    props = {"code": get("code")}
    props.update({name: _jsonable(get(name)) for name in input_columns(model)})
    props.update(
        version=get("version"),
        created_at=_jsonable(get("created_at")),
        updated_at=_jsonable(get("updated_at")),
    )
    return props


def feature(model: type[Record], get: Callable[[str], Any]) -> dict[str, Any]:
    """An RFC 7946 Feature from column values read through ``get`` (see ``properties``)."""
    geom = get("geom") if model.geometry_type is not None else None
    return {
        "type": "Feature",
        "id": get("code"),
        "geometry": mapping(geom) if geom is not None else None,
        "properties": properties(model, get),
    }


def to_properties(record: Record) -> dict[str, Any]:
    """The record's fields as JSON-ready values (with version and stamps, without geometry)."""
    return properties(type(record), partial(getattr, record))


def to_feature(record: Record) -> dict[str, Any]:
    """An RFC 7946 Feature; records without geometry get ``"geometry": null``."""
    return feature(type(record), partial(getattr, record))


def json_schema(model: type[Record]) -> dict[str, Any]:
    """JSON Schema of a layer's properties, for the OpenAPI document."""
    props: dict[str, Any] = {}
    required = []
    for name, column in input_columns(model).items():
        kind = column.type
        schema: dict[str, Any] = (
            {"type": "boolean"}
            if isinstance(kind, Boolean)
            else {"type": "integer"}
            if isinstance(kind, Integer)
            else {"type": "number"}
            if isinstance(kind, Float)
            else {"type": "string", "format": "date-time"}
            if isinstance(kind, UtcDateTime)
            else {"type": "string", "maxLength": max_chars(column)}
        )
        info = column.info
        for key, target in (
            ("ge", "minimum"),
            ("le", "maximum"),
            ("choices", "enum"),
            ("pattern", "pattern"),
        ):
            if key in info:
                schema[target] = list(info[key]) if key == "choices" else info[key]
        if column.doc:
            schema["description"] = column.doc
        if column.nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        elif not isinstance(kind, Boolean):
            required.append(name)
        props[name] = schema
    return {"type": "object", "properties": props, "required": required}


def audit_entry(entry: Any) -> dict[str, Any]:
    """One history entry as JSON: who, when, what, the fields that changed, before and after."""
    before = (entry.before or {}).get("properties", {})
    after = (entry.after or {}).get("properties", {})
    changed = sorted(
        k for k in set(before) | set(after) if k not in READ_ONLY and before.get(k) != after.get(k)
    )
    if (entry.before or {}).get("geometry") != (entry.after or {}).get("geometry"):
        changed.append("geometry")
    return {
        "id": entry.id,
        "at": _jsonable(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "changed": changed,
        "before": entry.before,
        "after": entry.after,
    }
