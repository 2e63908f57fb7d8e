"""JSON API under /api/v1: GeoJSON lists, CRUD with optimistic locking, import and export.

Views only parse the request, call ``registry.store`` / ``registry.io`` and shape the answer.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from registry import io, schemas, store
from registry.db import transaction
from registry.errors import NotFoundError, PreconditionRequired, ValidationError
from registry.models import BY_LAYER, Record
from registry.services import imports, records
from registry.web import query_number, sessions
from registry.web.auth import actor
from registry.web.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")
#: The layer part of record URLs: only layer names, so that the API's other paths (export,
#: coverage/…, jobs/…) are never taken for records (their wrong methods get 405 with Allow).
LAYER = f"<any({', '.join(BY_LAYER)}):layer>"


@bp.url_value_preprocessor
def _check_url_values(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Codes in URLs and text filters go to the database: refuse control characters early."""
    for name, value in (values or {}).items():
        schemas.check_text(value, name)
    for name in ("q", "commune", "after", "before"):
        schemas.check_text(request.args.get(name, ""), name)


def _flag(name: str) -> bool:
    """A yes/no query parameter (absent: no); a 400 naming it for other words."""
    word = request.args.get(name, "").strip().lower()
    if word not in schemas.TRUE_WORDS | schemas.FALSE_WORDS:
        raise ValidationError(
            f"bad {name}", details=[{"field": name, "reason": "must be true or false"}]
        )
    return word in schemas.TRUE_WORDS


def _area() -> tuple[float, float, float, float] | None:
    return None if _flag("allow_outside_area") else current_app.config["AREA_BBOX"]


def _bbox_arg() -> tuple[float, float, float, float] | None:
    raw = request.args.get("bbox")
    if raw is None:
        return None
    bbox = tuple(float(v) for v in raw.split(",")) if re.match(schemas.BBOX_PATTERN, raw) else ()
    if (
        len(bbox) != 4
        or not all(math.isfinite(v) for v in bbox)
        or bbox[0] > bbox[2]
        or bbox[1] > bbox[3]
        or bbox[0] < -180
        or bbox[2] > 180
        or bbox[1] < -90
        or bbox[3] > 90
    ):
        raise ValidationError(
            "bad bbox",
            details=[
                {
                    "field": "bbox",
                    "reason": ("must be min_lon,min_lat,max_lon,max_lat in degrees with min ≤ max"),
                }
            ],
        )
    return bbox


def _body(model: type[Record] | None = None) -> dict[str, Any]:
    """The request's record as flat fields (+ ``geometry``), from a Feature or a plain object;
    with ``model``, values of the wrong JSON type for their field are refused."""
    doc = request.get_json(silent=True)
    if not isinstance(doc, dict):
        raise ValidationError(
            "the body must be a JSON object (a GeoJSON Feature or fields)",
            details=[{"field": "body", "reason": "is not a JSON object"}],
        )
    if doc.get("type") == "Feature":
        props = doc.get("properties") or {}
        if not isinstance(props, dict):
            raise ValidationError(
                "bad Feature", details=[{"field": "properties", "reason": "must be an object"}]
            )
        data = dict(props)
        if "geometry" in doc:
            data["geometry"] = doc["geometry"]
        feature_id = doc.get("id")
        if feature_id is not None and (
            isinstance(feature_id, bool) or not isinstance(feature_id, str | int | float)
        ):
            raise ValidationError(
                "bad Feature", details=[{"field": "id", "reason": "must be a string or a number"}]
            )
        if feature_id is not None and "code" not in data:
            data["code"] = str(feature_id)
    else:
        data = dict(doc)
    if model is not None:
        schemas.check_json_types(model, data)
    return data


def _expected_version(data: dict[str, Any]) -> int:
    """The version the client is changing: If-Match header, or ``version`` in body or query."""
    raw = (
        request.headers.get("If-Match", "").strip('"W/ ')
        or data.pop("version", None)
        or request.args.get("version")
    )
    data.pop("version", None)
    if raw is None or raw == "":
        raise PreconditionRequired(
            "say which version you are changing",
            details=[
                {
                    "field": "version",
                    "reason": "is required (If-Match header, or version in the body or the query)",
                }
            ],
        )
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 10:
        return int(raw)
    raise ValidationError(
        "bad version", details=[{"field": "version", "reason": "must be a whole number"}]
    )


def _feature_response(record: Record, status: int = 200) -> Response:
    response = jsonify(schemas.to_feature(record))
    response.status_code = status
    response.headers["ETag"] = f'"{record.version}"'
    return response


@bp.get("/")
def index() -> Any:
    return jsonify(
        {
            "layers": {
                name: url_for("api.list_layer", layer=name, _external=True) for name in BY_LAYER
            },
            "openapi": url_for("api.openapi", _external=True),
        }
    )


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document(current_app.config["MAX_PAGE_SIZE"], request.url_root))


@bp.get(f"/{LAYER}")
def list_layer(layer: str) -> Any:
    """A page of a layer; ``next``/``prev`` links carry the boundary code (keyset paging)."""
    model = BY_LAYER[layer]
    if "offset" in request.args:
        raise ValidationError(
            "offset is not supported",
            details=[
                {
                    "field": "offset",
                    "reason": (
                        "is not supported: pages are addressed by after=/before= codes; follow the "
                        "next and prev links"
                    ),
                }
            ],
        )
    limit = query_number(
        "limit",
        current_app.config["PAGE_SIZE"],
        1,
        current_app.config["MAX_PAGE_SIZE"],
        integer=True,
    )
    with sessions()() as session:
        page = store.list_page(
            session,
            model,
            limit=limit,
            after=request.args.get("after"),
            before=request.args.get("before"),
            bbox=_bbox_arg(),
            commune=request.args.get("commune"),
            q=request.args.get("q"),
        )
        features = [schemas.to_feature(r) for r in page.records]
    base = url_for("api.list_layer", layer=layer, _external=True)
    args = {k: v for k, v in request.args.items() if k not in ("after", "before", "limit")}

    def link(rel: str, boundary: str, code: str) -> dict[str, str]:
        return {"rel": rel, "href": f"{base}?{urlencode({**args, boundary: code, 'limit': limit})}"}

    links = [{"rel": "self", "href": request.url}]
    if page.next_after is not None:
        links.append(link("next", "after", page.next_after))
    if page.prev_before is not None:
        links.append(link("prev", "before", page.prev_before))
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if page.number_matched is not None:
        doc["numberMatched"] = page.number_matched
    doc.update(numberReturned=len(features), links=links)
    extents = [g.bounds for r in page.records if (g := getattr(r, "geom", None)) is not None]
    if extents:
        doc["bbox"] = [
            min(e[0] for e in extents),
            min(e[1] for e in extents),
            max(e[2] for e in extents),
            max(e[3] for e in extents),
        ]
    return jsonify(doc)


@bp.get(f"/{LAYER}/<code>")
def get_one(layer: str, code: str) -> Any:
    with sessions()() as session:
        return _feature_response(store.get_record(session, BY_LAYER[layer], code))


@bp.post(f"/{LAYER}")
def create(layer: str) -> Any:
    model = BY_LAYER[layer]
    data = _body(model)
    data.pop("version", None)
    with transaction(sessions()) as session:
        record = store.create_record(session, model, data, actor=actor(), area_bbox=_area())
    response = _feature_response(record, 201)
    response.headers["Location"] = url_for("api.get_one", layer=layer, code=record.code)
    return response


@bp.route(f"/{LAYER}/<code>", methods=["PUT", "PATCH"])
def update(layer: str, code: str) -> Any:
    """Update a record; a site's antennas move with its tower unless ``move_antennas=false``."""
    model = BY_LAYER[layer]
    data = _body(model)
    version = _expected_version(data)
    keep = request.args.get("move_antennas", "true").strip().lower() in schemas.FALSE_WORDS
    with transaction(sessions()) as session:
        record = records.update_record(
            session,
            model,
            code,
            data,
            expected_version=version,
            actor=actor(),
            area_bbox=_area(),
            move_antennas=not keep,
        )
    return _feature_response(record)


@bp.delete(f"/{LAYER}/<code>")
def delete(layer: str, code: str) -> Any:
    model = BY_LAYER[layer]
    version = _expected_version({})
    with transaction(sessions()) as session:
        store.delete_record(session, model, code, expected_version=version, actor=actor())
    return "", 204


@bp.get(f"/{LAYER}/<code>/history")
def history(layer: str, code: str) -> Any:
    """Every write of the record, oldest first; works for deleted records too."""
    model = BY_LAYER[layer]
    with sessions()() as session:
        entries = store.history(session, model, code)
        if not entries:
            raise NotFoundError(f"no history for {layer} {code!r}")
        return jsonify(
            {"layer": layer, "code": code, "entries": [schemas.audit_entry(e) for e in entries]}
        )


@bp.post(f"/{LAYER}/<code>/restore")
def restore(layer: str, code: str) -> Any:
    """Bring the record back to a history entry's state (``audit_id``); needs the current
    version unless the record was deleted."""
    model = BY_LAYER[layer]
    data = _body()
    audit_id = data.get("audit_id")
    with transaction(sessions()) as session:
        exists = store.exists(session, model, code)
        record = store.restore_record(
            session,
            model,
            code,
            audit_id,
            expected_version=_expected_version(data) if exists else None,
            actor=actor(),
        )
    return _feature_response(record, 200 if exists else 201)


@bp.post("/import")
def import_file() -> Any:
    """Import an uploaded file (multipart ``file``) or the raw body; all or nothing.

    ``format=osm`` (or a ``.osm``/``.osm.pbf`` upload) imports an OpenStreetMap extract;
    ``skip_outside=true`` takes an OpenCelliD extract larger than the area and reports the
    cells it skipped by reason."""
    upload = request.files.get("file")
    data = upload.read() if upload else request.get_data()
    if not data:
        raise ValidationError(
            "nothing to import", details=[{"field": "file", "reason": "is empty or missing"}]
        )
    fmt, filename = request.args.get("format"), upload.filename if upload else None
    if imports.is_osm(filename, fmt):
        return jsonify(
            imports.import_osm_bytes(
                current_app.config,
                sessions(),
                data,
                filename=filename,
                actor=actor(),
                area_bbox=_area(),
            )
        )
    if _flag("skip_outside"):
        area = _area()
        if fmt not in (None, "opencellid") or area is None:
            raise ValidationError(
                "skip_outside applies to OpenCelliD extracts, within the area",
                details=[{"field": "skip_outside", "reason": "needs format=opencellid"}],
            )
        return jsonify(
            imports.import_opencellid_extract(sessions(), data, actor=actor(), area_bbox=area)
        )
    layers = io.read_layers(data, fmt=fmt, filename=filename, layer=request.args.get("layer"))
    with transaction(sessions()) as session:
        report = store.import_layers(session, layers, actor=actor(), area_bbox=_area())
    return jsonify(report.to_dict())


@bp.get("/export")
def export() -> Any:
    """Every layer as one GeoPackage, or one layer (``layer``) in any format."""
    fmt = request.args.get("format", "gpkg")
    layer = request.args.get("layer")
    if fmt not in ("gpkg", "geojson", "csv", "kmz"):
        raise ValidationError(
            "unknown export format",
            details=[{"field": "format", "reason": "must be gpkg, geojson, csv or kmz"}],
        )
    if layer not in BY_LAYER and (layer is not None or fmt != "gpkg"):
        raise ValidationError(
            "say which layer to export",
            details=[{"field": "layer", "reason": f"must be one of {', '.join(BY_LAYER)}"}],
        )
    with sessions()() as session:
        if fmt == "gpkg":
            name = layer or "registry"
            with tempfile.TemporaryDirectory() as tmp:
                models = [BY_LAYER[layer]] if layer else None
                path = io.export_gpkg(session, Path(tmp) / f"{name}.gpkg", models=models)
                payload = path.read_bytes()
            return Response(
                payload,
                mimetype="application/geopackage+sqlite3",
                headers={"Content-Disposition": f"attachment; filename={name}.gpkg"},
            )
        assert layer is not None  # checked above: only a GeoPackage may leave it out
        if fmt == "kmz":
            with tempfile.TemporaryDirectory() as tmp:
                payload = io.export_kmz(session, layer, Path(tmp) / f"{layer}.kmz").read_bytes()
            return Response(
                payload,
                mimetype="application/vnd.google-earth.kmz",
                headers={"Content-Disposition": f"attachment; filename={layer}.kmz"},
            )
        if fmt == "geojson":
            return Response(io.export_geojson(session, layer), mimetype="application/geo+json")
        return Response(
            io.export_csv(session, layer),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={layer}.csv"},
        )
