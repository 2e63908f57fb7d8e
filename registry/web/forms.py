"""HTML forms over the registry's records: fields from the models, values back to store input.

The fields come from ``registry.schemas.input_columns`` (the same place the API's validation
and OpenAPI document come from), so a form accepts and rejects exactly what the API does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Boolean, Text

from registry import schemas
from registry.db import UtcDateTime
from registry.models import Record

#: Field labels, by column name (English source; translated in registry/translations).
LABELS: dict[str, Any] = {
    "code": _l("Code"),
    "name": _l("Name"),
    "type": _l("Type"),
    "population": _l("Population"),
    "area_km2": _l("Area (km²)"),
    "admin_center_lon": _l("Centre longitude"),
    "admin_center_lat": _l("Centre latitude"),
    "before_merger": _l("Before the 2025 merger"),
    "synthetic": _l("Synthetic"),
    "commune_code": _l("Commune"),
    "households": _l("Households"),
    "kind": _l("Kind"),
    "from_node_code": _l("From node"),
    "to_node_code": _l("To node"),
    "road": _l("Road"),
    "capacity_mbps": _l("Capacity (Mbps)"),
    "status": _l("Status"),
    "operator": _l("Operator"),
    "tower_height_m": _l("Tower height (m)"),
    "ground_elevation_m": _l("Ground elevation (m)"),
    "backhaul_kind": _l("Backhaul"),
    "backhaul_capacity_mbps": _l("Backhaul capacity (Mbps)"),
    "fibre_node_code": _l("Fibre node"),
    "site_code": _l("Site"),
    "technology": _l("Technology"),
    "band": _l("Band"),
    "freq_mhz": _l("Frequency (MHz)"),
    "bandwidth_mhz": _l("Bandwidth (MHz)"),
    "azimuth_deg": _l("Azimuth (°)"),
    "mech_tilt_deg": _l("Mechanical tilt (°)"),
    "elec_tilt_deg": _l("Electrical tilt (°)"),
    "h_beamwidth_deg": _l("Horizontal beamwidth (°)"),
    "v_beamwidth_deg": _l("Vertical beamwidth (°)"),
    "gain_dbi": _l("Gain (dBi)"),
    "tx_power_dbm": _l("Transmit power (dBm)"),
    "height_m": _l("Antenna height (m)"),
    "village_code": _l("Village"),
    "products": _l("Products"),
    "platform": _l("Platform"),
    "handle": _l("Handle"),
    "phone_tech": _l("Phone"),
    "wanted_class": _l("Wanted quality"),
    "start": _l("Start"),
    "duration_min": _l("Duration (min)"),
    "streams": _l("Streams"),
    "orders": _l("Orders"),
    "views": _l("Views"),
    "measured_at": _l("Measured at"),
    "rsrp_dbm": _l("RSRP (dBm)"),
    "dl_rate_mbps": _l("Download (Mbps)"),
    "ul_rate_mbps": _l("Upload (Mbps)"),
    "geometry": _l("Location"),
    "lon": _l("Longitude"),
    "lat": _l("Latitude"),
    "version": _l("Version"),
}


def label(name: str) -> Any:
    return LABELS.get(name, name.replace("_", " "))


@dataclass
class Field:
    """One input of a record form."""

    name: str
    kind: str  # text | textarea | checkbox | select
    value: Any = ""
    choices: tuple[str, ...] = ()
    required: bool = False

    @property
    def label(self) -> Any:
        return label(self.name)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def record_fields(model: type[Record], values: dict[str, Any], *, editing: bool) -> list[Field]:
    """The form's fields for ``model``, filled from ``values`` (a record's or the posted ones)."""
    fields = []
    for name, column in schemas.input_columns(model).items():
        if editing and name == "code":
            continue
        kind, choices = "text", ()
        if isinstance(column.type, Boolean):
            kind = "checkbox"
        elif "choices" in column.info:
            kind, choices = "select", tuple(column.info["choices"])
        elif isinstance(column.type, Text):
            kind = "textarea"
        value = values.get(name)
        fields.append(
            Field(
                name,
                kind,
                value if kind == "checkbox" else _text(value),
                choices,
                required=not column.nullable and kind != "checkbox",
            )
        )
    if model.geometry_type == "Point":
        fields += [
            Field("lon", "text", _text(values.get("lon")), required=True),
            Field("lat", "text", _text(values.get("lat")), required=True),
        ]
    elif model.geometry_type is not None:
        fields.append(Field("geometry", "textarea", _text(values.get("geometry")), required=True))
    return fields


def record_values(record: Record) -> dict[str, Any]:
    """A stored record as form values."""
    values = schemas.to_properties(record)
    geom: BaseGeometry | None = getattr(record, "geom", None)
    if geom is not None:
        if type(record).geometry_type == "Point":
            values.update(lon=round(geom.x, 6), lat=round(geom.y, 6))
        else:
            values["geometry"] = geom.wkt
    return values


def posted_values(model: type[Record], form: Any) -> dict[str, Any]:
    """The posted form as display values (to show it again with its errors)."""
    values: dict[str, Any] = {}
    for name, column in schemas.input_columns(model).items():
        if isinstance(column.type, Boolean):
            values[name] = name in form
        else:
            values[name] = form.get(name, "")
    for name in ("lon", "lat", "geometry"):
        if name in form:
            values[name] = form[name]
    return values


def store_input(
    model: type[Record], form: Any, *, stored: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The posted form as input for ``store.create_record`` / ``store.update_record``.

    Text is passed as typed, so the store's validation converts and checks it exactly as it
    does for the API. The geometry is included only when it is new or changed (as with a PATCH).
    """
    data: dict[str, Any] = {}
    for name, column in schemas.input_columns(model).items():
        if stored is not None and name == "code":
            continue
        if isinstance(column.type, Boolean):
            data[name] = name in form
        elif isinstance(column.type, UtcDateTime) and not form.get(name, "").strip():
            data[name] = None
        else:
            data[name] = form.get(name, "")
    if model.geometry_type == "Point":
        lon, lat = form.get("lon", "").strip(), form.get("lat", "").strip()
        if stored is None or (lon, lat) != (_text(stored.get("lon")), _text(stored.get("lat"))):
            try:
                data["geometry"] = {"type": "Point", "coordinates": [float(lon), float(lat)]}
            except ValueError:
                # as the CSV reader does: the store reports it as unreadable
                data["geometry"] = f"POINT ({lon} {lat})" if lon or lat else None
    elif model.geometry_type is not None:
        wkt = form.get("geometry", "").strip()
        if stored is None or wkt != stored.get("geometry"):
            data["geometry"] = wkt or None
    return data


def errors_by_field(details: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Validation details grouped by field, for showing next to each input."""
    grouped: dict[str, list[str]] = {}
    for d in details:
        grouped.setdefault(d.get("field", ""), []).append(d.get("reason", ""))
    return grouped
