"""The OpenAPI 3.1 document of /api/v1, generated from the models' column constraints.

It states what the API checks, no looser: parameter ranges and forms, every status an operation
answers with its content type, and links between operations (a created record's code and
version feed its reads and writes). What JSON Schema cannot state is in the descriptions and
answered with a 400 naming the field: references to other records, the registry area, geometry
validity, 3GPP bandwidths per technology, a bbox's order, and the contents of imported files.
"""

from __future__ import annotations

from typing import Any

from registry import schemas
from registry.io import FORMATS
from registry.maps import MAX_TILE_ZOOM
from registry.models import BY_LAYER, JOB_STATES
from registry.radio.linkbudget import LIVE_CLASSES
from registry.services.coverage import RASTERS
from registry.services.scenarios import NAME_PATTERN
from registry.store import COUNT_LIMIT

#: Text without the control characters the API refuses (``schemas.BAD_CHARACTERS``).
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"
#: A number as the query parser takes it (``registry.web.query_number``).
NUMBER_PATTERN = f"^{schemas.NUMBER}$"
#: Geometry types each spatial layer takes (a commune may come as one Polygon).
GEOMETRY_TYPES = {"MultiPolygon": ["MultiPolygon", "Polygon"]}

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                    "row": {"type": "integer"},
                    "layer": {"type": "string"},
                },
            },
        },
        "current": {"type": "object"},
    },
}

HISTORY_ENTRY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string"},
        "actor": {"type": "string"},
        "action": {"enum": ["create", "update", "delete", "restore"]},
        "changed": {"type": "array", "items": {"type": "string"}},
        "before": {"type": ["object", "null"]},
        "after": {"type": ["object", "null"]},
    },
}
BINARY = {"type": "string", "format": "binary"}
COLLECTION = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {"type": "object"}},
    },
}
JOB = {
    "type": "object",
    "required": ["id", "kind", "owner", "status", "progress"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string"},
        "owner": {"type": "string"},
        "status": {"enum": list(JOB_STATES)},
        "done": {"type": "integer"},
        "total": {"type": "integer"},
        "progress": {"type": "number"},
        "message": {"type": "string"},
        "cancel_requested": {"type": "boolean"},
        "result": {"type": ["object", "null"]},
        "error": {"type": ["object", "null"]},
        "rerun_of": {"type": ["string", "null"]},
    },
}
#: What each error status means, for the documents' descriptions.
ERROR_MEANING = {
    400: "bad input: `details` names each field and why",
    401: "no valid credentials (send an API token)",
    403: "the token's role may not do this",
    404: "no such record, layer, resource or computed result",
    409: "conflicts with stored state (stale version, duplicate code, record in use)",
    428: "say which version you are changing (If-Match header)",
}


#: The confidence of a verdict (`registry.confidence`), shared by sellers and event places.
CONFIDENCE = {
    "p_meets_wanted": {
        "type": ["number", "null"],
        "minimum": 0,
        "maximum": 1,
        "description": "probability that the wanted class is met (null: not known)",
    },
    "confidence": {
        "enum": ["likely", "borderline", "unlikely", None],
        "description": "likely (p >= READINESS_LIKELY_MIN_P), unlikely (p < "
        "READINESS_UNLIKELY_MAX_P), else borderline: test on site first",
    },
}
SELLER_VERDICT = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "service_class": {"type": "string"},
        "wanted_class": {"type": "string"},
        "meets_wanted": {"type": "boolean"},
        "limiting_factor": {"type": "string"},
        "explanation": {"type": "string"},
        "usable_mbps": {"type": "number"},
        **CONFIDENCE,
        "margin_db": {
            "type": ["number", "null"],
            "description": "median uplink SINR minus what the wanted class needs, dB",
        },
        "sigma_db": {
            "type": ["number", "null"],
            "description": "location and terrain sigma combined, dB",
        },
    },
}
EVENT_PLACE = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "rank": {"type": "integer"},
        "feasible": {"type": "boolean"},
        "per_stream_mbps": {"type": "number"},
        "sellers_nearby": {"type": "integer"},
        **CONFIDENCE,
    },
}
KPI_ROW = {
    "type": "object",
    "properties": {
        "commune_code": {"type": "string"},
        "commune": {"type": "string"},
        **{
            f"{kind}_{level}": {
                "type": "integer",
                "description": f"{kind} whose wanted class is {level}",
            }
            for kind in ("villages", "sellers")
            for level in ("likely", "borderline", "unlikely")
        },
    },
    "additionalProperties": True,
}


def _tables(item_ref: str, json_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A table answer as ``format`` asks: GeoJSON whose features' properties are ``item_ref``
    (the default), CSV, or JSON (the array of those properties, unless ``json_schema``)."""
    item = {"$ref": f"#/components/schemas/{item_ref}"}
    features = {"type": "array", "items": {"type": "object", "properties": {"properties": item}}}
    return {
        "description": "as the format asks: GeoJSON (default), CSV or JSON",
        "content": {
            "application/geo+json": {
                "schema": {"allOf": [COLLECTION, {"properties": {"features": features}}]}
            },
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": json_schema or {"type": "array", "items": item}},
        },
    }


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(c): {
            "description": ERROR_MEANING[c],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for c in codes
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _file(description: str, media_type: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": BINARY}}}


def _text(name: str, where: str = "query", **extra: Any) -> dict[str, Any]:
    """A text parameter without control characters."""
    schema = {"type": "string", "pattern": TEXT_PATTERN}
    return {"name": name, "in": where, "schema": schema, **extra}


def _number(name: str, low: float, high: float, *, integer: bool = False, **extra: Any) -> Any:
    """A numeric query parameter with its range, as ``query_number`` checks it."""
    schema = {"type": "integer" if integer else "number", "minimum": low, "maximum": high}
    return {"name": name, "in": "query", "schema": schema, **extra}


def _geometry(model: Any) -> dict[str, Any]:
    types = GEOMETRY_TYPES.get(model.geometry_type, [model.geometry_type])
    return {
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {"type": {"enum": types}, "coordinates": {"type": "array"}},
        "description": (
            f"GeoJSON {' or '.join(types)} in lon/lat (EPSG:4326), at most "
            f"{schemas.max_vertices(model)} vertices, inside the registry area unless "
            "allow_outside_area"
        ),
    }


def _feature(layer: str, *, write: bool, partial: bool = False) -> dict[str, Any]:
    model = BY_LAYER[layer]
    geometry: dict[str, Any] = {"type": "null"} if model.geometry_type is None else _geometry(model)
    props: dict[str, Any] = {"$ref": f"#/components/schemas/{layer}"}
    if not write:
        props = {
            "allOf": [
                props,
                {
                    "type": "object",
                    "required": ["version", "created_at", "updated_at"],
                    "properties": {
                        "version": {"type": "integer"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                    },
                },
            ]
        }
    if partial:  # an update carries only the fields it changes
        props = {"type": "object", "properties": schemas.json_schema(model)["properties"]}
    required = ["type", "properties"] + (
        ["geometry"] if model.geometry_type and not partial else []
    )
    return {
        "type": "object",
        "required": required,
        "properties": {
            "type": {"const": "Feature"},
            "id": {"type": ["string", "number"]},
            "geometry": geometry,
            "properties": props,
        },
    }


def _record_links(layer: str) -> dict[str, Any]:
    """Links from an answer carrying a record (its code and ETag) to the record's operations."""
    code = {"code": "$response.body#/id"}
    versioned = {**code, "header.If-Match": "$response.header.ETag"}
    base = f"/api/v1/{layer}/{{code}}"
    return {
        "GetRecord": {"operationRef": _ref(base, "get"), "parameters": code},
        "History": {"operationRef": _ref(f"{base}/history", "get"), "parameters": code},
        "PatchRecord": {"operationRef": _ref(base, "patch"), "parameters": versioned},
        "DeleteRecord": {"operationRef": _ref(base, "delete"), "parameters": versioned},
    }


def _ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + f"/{method}"


def openapi_document(max_page_size: int, server_url: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    params = [
        {
            "name": "bbox",
            "in": "query",
            "schema": {"type": "string", "pattern": schemas.BBOX_PATTERN},
            "description": (
                "min_lon,min_lat,max_lon,max_lat in degrees (min ≤ max, else a 400 naming bbox)"
            ),
        },
        _text("commune", description="GSO code of a commune (404 if there is none)"),
        _text("q", description="name contains (case and diacritics ignored)"),
        _number("limit", 1, max_page_size, integer=True),
        _text("after", description="code of the last record of the previous page (next link)"),
        _text("before", description="code of the first record of the following page (prev link)"),
    ]
    outside = {"name": "allow_outside_area", "in": "query", "schema": {"type": "boolean"}}
    code = _text("code", "path", required=True)
    version = {
        "name": "If-Match",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": '^(W/)?"?[0-9]{1,9}"?$'},
        "description": "the version being changed, as the ETag gave it",
    }
    for layer in BY_LAYER:
        feature = _feature(layer, write=False)
        body = {
            "required": True,
            "content": {"application/json": {"schema": _feature(layer, write=True)}},
        }
        change = {
            "required": True,
            "content": {"application/json": {"schema": _feature(layer, write=True, partial=True)}},
        }
        saved = {**_json(feature), "headers": {"ETag": {"schema": {"type": "string"}}}}
        created = {
            **_json(feature, "Created"),
            "headers": {
                "ETag": {"schema": {"type": "string"}},
                "Location": {"schema": {"type": "string"}},
            },
            "links": _record_links(layer),
        }
        paths[f"/api/v1/{layer}"] = {
            "get": {
                "summary": f"List {layer} as a GeoJSON FeatureCollection",
                "parameters": params,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["type", "features", "numberReturned", "links"],
                            "properties": {
                                "type": {"const": "FeatureCollection"},
                                "features": {"type": "array", "items": feature},
                                "numberMatched": {
                                    "type": "integer",
                                    "description": (
                                        "how many records match in all; left out when more than "
                                        f"{COUNT_LIMIT} do (follow the next links)"
                                    ),
                                },
                                "numberReturned": {"type": "integer"},
                                "links": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "rel": {"enum": ["self", "next", "prev"]},
                                            "href": {"type": "string"},
                                        },
                                    },
                                },
                                "bbox": {"type": "array", "items": {"type": "number"}},
                            },
                        }
                    ),
                    **_errors(400, 404),
                },
            },
            "post": {
                "summary": f"Create one of {layer}",
                "description": (
                    "Checked whole; besides the schema: references to other records, the "
                    "registry area, geometry validity"
                    + (" and 3GPP bandwidths per technology" if layer == "sectors" else "")
                    + " (a 400 naming each field)."
                ),
                "parameters": [outside],
                "requestBody": body,
                "responses": {"201": created, **_errors(400, 409)},
            },
        }
        paths[f"/api/v1/{layer}/{{code}}/history"] = {
            "get": {
                "summary": "Every write of the record (who, when, before and after), oldest first",
                "parameters": [code],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["layer", "code", "entries"],
                            "properties": {
                                "layer": {"const": layer},
                                "code": {"type": "string"},
                                "entries": {"type": "array", "items": HISTORY_ENTRY},
                            },
                        }
                    ),
                    **_errors(400, 404),
                },
            }
        }
        paths[f"/api/v1/{layer}/{{code}}/restore"] = {
            "post": {
                "summary": "Bring the record back to a history entry's state (a deleted one too)",
                "description": "If-Match is needed unless the record is deleted (428 otherwise).",
                "parameters": [code, {**version, "required": False}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["audit_id"],
                                "properties": {
                                    "audit_id": {
                                        "type": "integer",
                                        "minimum": 1,
                                        "maximum": schemas.INT32_MAX,
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": saved,
                    "201": {**saved, "description": "Re-created"},
                    **_errors(400, 404, 409, 428),
                },
            }
        }
        paths[f"/api/v1/{layer}/{{code}}"] = {
            "get": {"parameters": [code], "responses": {"200": saved, **_errors(400, 404)}},
            "put": {
                "summary": "Change fields of the record (as PATCH)",
                "parameters": [code, version, outside],
                "requestBody": change,
                "responses": {"200": saved, **_errors(400, 404, 409, 428)},
            },
            "patch": {
                "summary": "Change fields of the record",
                "parameters": [code, version, outside],
                "requestBody": change,
                "responses": {"200": saved, **_errors(400, 404, 409, 428)},
            },
            "delete": {
                "parameters": [code, version],
                "responses": {"204": {"description": "Deleted"}, **_errors(400, 404, 409, 428)},
            },
        }
    paths["/api/v1/import"] = {
        "post": {
            "summary": "Import a file, all or nothing",
            "description": "Every row is checked as a create is; a bad row rejects the file (400).",
            "parameters": [
                {"name": "format", "in": "query", "schema": {"enum": [*FORMATS, "osm"]}},
                {"name": "layer", "in": "query", "schema": {"enum": list(BY_LAYER)}},
                outside,
                {
                    "name": "skip_outside",
                    "in": "query",
                    "description": "OpenCelliD extract larger than the area: skip and report "
                    "the cells outside it, of another MCC or on bad rows",
                    "schema": {"type": "boolean"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    },
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            },
            "responses": {"200": _json({"type": "object"}), **_errors(400, 409)},
        }
    }
    paths["/api/v1/export"] = {
        "get": {
            "summary": "Export as GeoPackage (all layers, or one), GeoJSON, CSV or KMZ (one layer)",
            "parameters": [
                {
                    "name": "format",
                    "in": "query",
                    "schema": {"enum": ["gpkg", "geojson", "csv", "kmz"]},
                },
                {"name": "layer", "in": "query", "schema": {"enum": list(BY_LAYER)}},
            ],
            "responses": {
                "200": {
                    "description": "the file",
                    "content": {
                        "application/geopackage+sqlite3": {"schema": BINARY},
                        "application/geo+json": {"schema": COLLECTION},
                        "text/csv": {"schema": {"type": "string"}},
                        "application/vnd.google-earth.kmz": {"schema": BINARY},
                    },
                },
                **_errors(400),
            },
        }
    }
    started = {
        **_json(JOB, "Accepted: follow the job"),
        "headers": {"Location": {"schema": {"type": "string"}}},
        "links": {
            "Job": {
                "operationRef": _ref("/api/v1/jobs/{job_id}", "get"),
                "parameters": {"job_id": "$response.body#/id"},
            }
        },
    }
    paths["/api/v1/coverage"] = {
        "get": {
            "summary": "Summary of the latest coverage run, with raster links",
            "responses": {"200": _json({"type": "object"}), **_errors(404)},
        },
        "post": {
            "summary": "Start (or incrementally update) the coverage computation",
            "responses": {"202": started, **_errors(404)},
        },
    }
    job_id = _text("job_id", "path", required=True)
    paths["/api/v1/jobs/{job_id}"] = {
        "get": {
            "summary": "A background job: status, progress, result or error (any worker answers)",
            "parameters": [job_id],
            "responses": {"200": _json(JOB), **_errors(404)},
        }
    }
    paths["/api/v1/jobs/{job_id}/cancel"] = {
        "post": {
            "summary": "Cancel a queued job now, a running one at its next step",
            "parameters": [job_id],
            "responses": {"200": _json(JOB), **_errors(404, 409)},
        }
    }
    paths["/api/v1/jobs/{job_id}/rerun"] = {
        "post": {
            "summary": "Run a failed, cancelled or interrupted job again (a new job)",
            "parameters": [job_id],
            "responses": {"202": _json(JOB), **_errors(404, 409)},
        }
    }
    paths["/api/v1/coverage/{name}.tif"] = {
        "get": {
            "summary": "A coverage raster (cloud-optimised GeoTIFF)",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"enum": list(RASTERS)}}
            ],
            "responses": {"200": _file("GeoTIFF", "image/tiff"), **_errors(404)},
        }
    }
    paths["/api/v1/coverage/tiles/{z}/{x}/{y}.png"] = {
        "get": {
            "summary": "Service-class coverage as XYZ map tiles (256 px PNG, Web Mercator)",
            "description": "x and y run from 0 to 2^z − 1 (404 outside).",
            "parameters": [
                {
                    "name": n,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0, "maximum": high},
                }
                for n, high in (
                    ("z", MAX_TILE_ZOOM),
                    ("x", 2**MAX_TILE_ZOOM - 1),
                    ("y", 2**MAX_TILE_ZOOM - 1),
                )
            ],
            "responses": {"200": _file("PNG tile", "image/png"), **_errors(404)},
        }
    }
    paths["/api/v1/coverage/point"] = {
        "get": {
            "summary": "Every coverage value at a point",
            "parameters": [
                _number("lon", -180, 180, required=True),
                _number("lat", -90, 90, required=True),
            ],
            "responses": {"200": _json({"type": "object"}), **_errors(400, 404)},
        }
    }
    svg = {
        "description": "SVG picture",
        "content": {"image/svg+xml": {"schema": {"type": "string"}}},
    }
    profile_summary = (
        "Path profile picture: terrain with the earth bulge, both antennas, the direct ray, "
        "the first Fresnel zone, Deygout's edges with their losses and the limiting ridge"
    )
    paths["/api/v1/sellers/{code}/profile.svg"] = {
        "get": {
            "summary": f"{profile_summary}; from a seller to its serving site",
            "parameters": [
                {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {"200": svg, **_errors(400, 404)},
        }
    }
    paths["/api/v1/coverage/profile.svg"] = {
        "get": {
            "summary": f"{profile_summary}; from a point to a site",
            "parameters": [
                *(
                    {"name": n, "in": "query", "required": True, "schema": {"type": "number"}}
                    for n in ("lon", "lat")
                ),
                {"name": "site", "in": "query", "required": True, "schema": {"type": "string"}},
            ],
            "responses": {"200": svg, **_errors(400, 404)},
        }
    }
    paths["/api/v1/coverage/calibration"] = {
        "post": {
            "summary": "Calibrate RSRP offsets (global, per site) and uplink factors (per "
            "technology) on the stored measurements; k-fold held-out errors; applied only "
            "where they drop",
            "parameters": [{"name": "folds", "in": "query", "schema": {"type": "integer"}}],
            "responses": {"200": _json({"type": "object"}), **_errors(400, 404)},
        }
    }
    paths["/api/v1/coverage/calibrations"] = {
        "get": {
            "summary": "Every calibration, newest first (the newest applied one is in force)",
            "responses": {"200": _json({"type": "array"})},
        }
    }
    paths["/api/v1/coverage/calibration/revert"] = {
        "post": {
            "summary": "Take the calibration in force out of force (the previous one returns)",
            "responses": {"200": _json({"type": "object"}), **_errors(404)},
        }
    }
    paths["/api/v1/coverage/measured"] = {
        "get": {
            "summary": "Measurements beside the prediction; bias and RMSE per commune",
            "responses": {"200": _json({"type": "object"}), **_errors(404)},
        }
    }
    paths["/api/v1/coverage/measured/errors"] = {
        "get": {
            "summary": "Measurements as GeoJSON with their prediction errors and a colour",
            "responses": {"200": _json({"type": "object"}), **_errors(404)},
        }
    }
    streams = _number(
        "concurrent_streams", 1, 1000, integer=True, description="sellers live at once in a cell"
    )
    rows = {"type": "array", "items": {"type": "object"}}
    geo_format = {"name": "format", "in": "query", "schema": {"enum": ["geojson", "csv", "json"]}}
    lang = {
        "name": "lang",
        "in": "query",
        "schema": {"enum": ["vi", "en"]},
        "description": "language of each reason's `explanation` (default: Accept-Language, "
        "else vi); the reason itself is `reason` (code and parameters; in CSV `reason_code` "
        "and `reason_params`)",
    }
    paths["/api/v1/readiness/sellers"] = {
        "get": {
            "summary": "Every seller's verdict, limiting factor, better spot and confidence",
            "parameters": [streams, geo_format, lang],
            "responses": {"200": _tables("SellerVerdict"), **_errors(400, 404)},
        }
    }
    paths["/api/v1/readiness/kpis"] = {
        "get": {
            "summary": "Coverage KPIs per commune and for one province or all (first row)",
            "parameters": [
                streams,
                {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}},
                lang,
                {
                    "name": "province",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "one province's communes only (default: every province)",
                },
            ],
            "responses": {
                "200": {
                    "description": "JSON (default) or CSV",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["rows"],
                                "properties": {
                                    "rows": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/KpiRow"},
                                    },
                                    "stated_figures": {},
                                },
                            }
                        },
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **_errors(400, 404),
            },
        }
    }
    paths["/api/v1/readiness/events"] = {
        "get": {
            "summary": "Event places ranked for N simultaneous streams at a quality (with "
            "format=json: `places`, and `alternatives` saying what is possible when none is)",
            "parameters": [
                _number("streams", 1, 10_000, integer=True, required=True),
                {"name": "quality", "in": "query", "schema": {"enum": list(LIVE_CLASSES)}},
                _number("travel_km", 0, 200),
                {"name": "candidates", "in": "query", "schema": {"enum": ["communes", "villages"]}},
                streams,
                geo_format,
                lang,
            ],
            "responses": {
                "200": _tables(
                    "EventPlace",
                    {
                        "type": "object",
                        "required": ["places", "alternatives"],
                        "properties": {
                            "places": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/EventPlace"},
                            },
                            "alternatives": {"type": "array"},
                        },
                    },
                ),
                **_errors(400, 404),
            },
        }
    }
    paths["/api/v1/backhaul/cuts"] = {
        "get": {
            "summary": "Impact of fibre cuts: every single point of failure, or one link",
            "parameters": [_text("link", description="a fibre link's code"), streams],
            "responses": {"200": _json(rows), **_errors(400, 404)},
        }
    }
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": NAME_PATTERN},
    }
    paths["/api/v1/siting"] = {
        "get": {
            "summary": "The latest siting run: chosen sites, cost, backhaul, gains",
            "responses": {"200": _json({"type": "object"}), **_errors(404)},
        },
        "post": {
            "summary": "Choose new sites for a budget (background job; needs coverage)",
            "parameters": [
                _number("candidates", 1, 20_000, integer=True),
                _number("max_sites", 1, 500, integer=True),
                _number("budget_mvnd", 0, 1e9),
                _number("spacing_km", 0, 100),
                _number("candidate_spacing_km", 0.1, 100),
                {"name": "method", "in": "query", "schema": {"enum": ["ip", "greedy"]}},
            ],
            "responses": {"202": started, **_errors(400, 404)},
        },
    }
    paths["/api/v1/scenarios"] = {
        "get": {
            "summary": "Saved what-if scenarios",
            "responses": {
                "200": _json(
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "changes": {"type": "integer"},
                                "promoted_at": {"type": ["string", "null"]},
                            },
                        },
                    }
                )
            },
        }
    }
    change_item = {
        "type": "object",
        "required": ["action", "layer", "code"],
        "properties": {
            "action": {"enum": ["add", "change", "remove"]},
            "layer": {"enum": ["sites", "sectors", "fibre_links"]},
            "code": {"type": "string", "minLength": 1},
            "data": {"type": "object", "description": "the fields (not for remove)"},
        },
    }
    scenario = {"type": "object", "required": ["name", "changes"]}
    paths["/api/v1/scenarios/{name}"] = {
        "get": {
            "parameters": [name],
            "responses": {"200": _json(scenario), **_errors(404)},
        },
        "put": {
            "summary": "Create or replace a scenario (checked, never applied)",
            "description": "Each change is tried on the registry and rolled back (a 400 per row).",
            "parameters": [name],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["changes"],
                            "properties": {
                                "changes": {"type": "array", "minItems": 1, "items": change_item}
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    **_json(scenario),
                    "links": {
                        "GetScenario": {
                            "operationRef": _ref("/api/v1/scenarios/{name}", "get"),
                            "parameters": {"name": "$response.body#/name"},
                        }
                    },
                },
                **_errors(400),
            },
        },
    }
    paths["/api/v1/scenarios/{name}/preview"] = {
        "post": {
            "summary": "KPI deltas, and who gains or loses a class (background job)",
            "parameters": [name],
            "responses": {"202": started, **_errors(404)},
        }
    }
    paths["/api/v1/scenarios/{name}/promote"] = {
        "post": {
            "summary": "Add the scenario's new sites to the registry as planned",
            "parameters": [name],
            "responses": {"200": _json({"type": "object"}), **_errors(400, 404, 409)},
        }
    }
    for item in paths.values():  # writes need an editor's token
        for method, operation in item.items():
            if method != "get":
                operation["security"] = [{"bearer": []}]
                operation["responses"].update(_errors(401, 403))
    components = {layer: schemas.json_schema(model) for layer, model in BY_LAYER.items()}
    components["Error"] = ERROR
    components["SellerVerdict"] = SELLER_VERDICT
    components["EventPlace"] = EVENT_PLACE
    components["KpiRow"] = KPI_ROW
    return {
        "openapi": "3.1.0",
        "info": {"title": "Coverage and infrastructure registry", "version": "1"},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "an API token (`flask users token NAME LABEL`, or the account page); "
                        "reads need one only where READ_REQUIRES_LOGIN is set"
                    ),
                }
            },
        },
    }
