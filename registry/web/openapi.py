"""The OpenAPI 3.1 document of /api/v1, generated from the models' column constraints."""

from __future__ import annotations

from typing import Any

from registry import schemas
from registry.io import FORMATS
from registry.models import BY_LAYER
from registry.radio.linkbudget import LIVE_CLASSES
from registry.services.coverage import RASTERS
from registry.store import COUNT_LIMIT

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


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(c): {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for c in codes
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _feature(layer: str, *, write: bool, partial: bool = False) -> dict[str, Any]:
    model = BY_LAYER[layer]
    geometry: dict[str, Any] = (
        {"type": "null"}
        if model.geometry_type is None
        else {"$ref": "#/components/schemas/Geometry"}
    )
    props: dict[str, Any] = {"$ref": f"#/components/schemas/{layer}"}
    if not write:
        props = {
            "allOf": [
                props,
                {
                    "type": "object",
                    "properties": {
                        "version": {"type": "integer"},
                        "created_at": {"type": "string"},
                        "updated_at": {"type": "string"},
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
            "id": {"type": "string"},
            "geometry": geometry,
            "properties": props,
        },
    }


def openapi_document(max_page_size: int) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    params = [
        {
            "name": "bbox",
            "in": "query",
            "schema": {"type": "string"},
            "description": "min_lon,min_lat,max_lon,max_lat",
        },
        {
            "name": "commune",
            "in": "query",
            "schema": {"type": "string"},
            "description": "GSO code of a commune",
        },
        {
            "name": "q",
            "in": "query",
            "schema": {"type": "string"},
            "description": "name contains (case and diacritics ignored)",
        },
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": max_page_size},
        },
        {
            "name": "after",
            "in": "query",
            "schema": {"type": "string"},
            "description": "code of the last record of the previous page (the next link's)",
        },
        {
            "name": "before",
            "in": "query",
            "schema": {"type": "string"},
            "description": "code of the first record of the following page (the prev link's)",
        },
    ]
    outside = {"name": "allow_outside_area", "in": "query", "schema": {"type": "boolean"}}
    code = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
    version = {
        "name": "If-Match",
        "in": "header",
        "schema": {"type": "string"},
        "description": "the version being changed (or `version` in the properties)",
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
        paths[f"/api/v1/{layer}"] = {
            "get": {
                "summary": f"List {layer} as a GeoJSON FeatureCollection",
                "parameters": params,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
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
                            },
                        }
                    ),
                    **_errors(400, 404),
                },
            },
            "post": {
                "summary": f"Create one of {layer}",
                "parameters": [outside],
                "requestBody": body,
                "responses": {"201": _json(feature, "Created"), **_errors(400, 409)},
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
                            "properties": {"entries": {"type": "array", "items": HISTORY_ENTRY}},
                        }
                    ),
                    **_errors(404),
                },
            }
        }
        paths[f"/api/v1/{layer}/{{code}}/restore"] = {
            "post": {
                "summary": "Bring the record back to a history entry's state (a deleted one too)",
                "parameters": [code, version],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["audit_id"],
                                "properties": {
                                    "audit_id": {"type": "integer", "minimum": 1},
                                    "version": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(feature),
                    "201": _json(feature, "Re-created"),
                    **_errors(400, 404, 409, 428),
                },
            }
        }
        paths[f"/api/v1/{layer}/{{code}}"] = {
            "get": {"parameters": [code], "responses": {"200": _json(feature), **_errors(404)}},
            "put": {
                "parameters": [code, version, outside],
                "requestBody": change,
                "responses": {"200": _json(feature), **_errors(400, 404, 409, 428)},
            },
            "patch": {
                "parameters": [code, version, outside],
                "requestBody": change,
                "responses": {"200": _json(feature), **_errors(400, 404, 409, 428)},
            },
            "delete": {
                "parameters": [
                    code,
                    version,
                    {"name": "version", "in": "query", "schema": {"type": "integer"}},
                ],
                "responses": {"204": {"description": "Deleted"}, **_errors(400, 404, 409, 428)},
            },
        }
    paths["/api/v1/import"] = {
        "post": {
            "summary": "Import a file, all or nothing",
            "parameters": [
                {"name": "format", "in": "query", "schema": {"enum": list(FORMATS)}},
                {"name": "layer", "in": "query", "schema": {"type": "string"}},
                outside,
            ],
            "requestBody": {
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    },
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                }
            },
            "responses": {"200": _json({"type": "object"}), **_errors(400)},
        }
    }
    paths["/api/v1/export"] = {
        "get": {
            "summary": "Export as GeoPackage (all layers), GeoJSON, CSV or KMZ (one layer)",
            "parameters": [
                {
                    "name": "format",
                    "in": "query",
                    "schema": {"enum": ["gpkg", "geojson", "csv", "kmz"]},
                },
                {"name": "layer", "in": "query", "schema": {"enum": list(BY_LAYER)}},
            ],
            "responses": {"200": {"description": "the file"}, **_errors(400)},
        }
    }
    job = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["queued", "running", "done", "failed"]},
            "progress": {"type": "number"},
        },
    }
    paths["/api/v1/coverage"] = {
        "get": {
            "summary": "Summary of the latest coverage run, with raster links",
            "responses": {"200": _json({"type": "object"}), **_errors(404)},
        },
        "post": {
            "summary": "Start (or incrementally update) the coverage computation",
            "responses": {"202": _json(job, "Accepted: follow the job"), **_errors(404)},
        },
    }
    paths["/api/v1/jobs/{job_id}"] = {
        "get": {
            "parameters": [
                {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {"200": _json(job), **_errors(404)},
        }
    }
    paths["/api/v1/coverage/{name}.tif"] = {
        "get": {
            "summary": "A coverage raster (cloud-optimised GeoTIFF)",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"enum": list(RASTERS)}}
            ],
            "responses": {"200": {"description": "GeoTIFF"}, **_errors(404)},
        }
    }
    paths["/api/v1/coverage/tiles/{z}/{x}/{y}.png"] = {
        "get": {
            "summary": "Service-class coverage as XYZ map tiles (256 px PNG, Web Mercator)",
            "parameters": [
                {
                    "name": n,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                }
                for n in ("z", "x", "y")
            ],
            "responses": {"200": {"description": "PNG tile"}, **_errors(404)},
        }
    }
    paths["/api/v1/coverage/point"] = {
        "get": {
            "summary": "Every coverage value at a point",
            "parameters": [
                {"name": n, "in": "query", "required": True, "schema": {"type": "number"}}
                for n in ("lon", "lat")
            ],
            "responses": {"200": _json({"type": "object"}), **_errors(400, 404)},
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
    paths["/api/v1/measurements/comparison"] = {
        "get": {
            "summary": "Measurements beside the prediction; bias and RMSE per commune",
            "responses": {"200": _json({"type": "object"}), **_errors(404)},
        }
    }
    paths["/api/v1/measurements/errors"] = {
        "get": {
            "summary": "Measurements as GeoJSON with their prediction errors and a colour",
            "responses": {"200": _json({"type": "object"}), **_errors(404)},
        }
    }
    streams = {
        "name": "concurrent_streams",
        "in": "query",
        "schema": {"type": "integer"},
        "description": "sellers streaming at once in one cell",
    }
    fmt = {"name": "format", "in": "query", "schema": {"enum": ["geojson", "csv", "json"]}}
    paths["/api/v1/readiness/sellers"] = {
        "get": {
            "summary": "Every seller's verdict, limiting factor and better spot",
            "parameters": [streams, fmt],
            "responses": {"200": _json({"type": "object"}), **_errors(400, 404)},
        }
    }
    paths["/api/v1/readiness/kpis"] = {
        "get": {
            "summary": "Coverage KPIs per commune and for the province",
            "parameters": [streams, fmt],
            "responses": {"200": _json({"type": "object"}), **_errors(400, 404)},
        }
    }
    paths["/api/v1/readiness/events"] = {
        "get": {
            "summary": "Event places ranked for N simultaneous streams at a quality",
            "parameters": [
                {"name": "streams", "in": "query", "required": True, "schema": {"type": "integer"}},
                {
                    "name": "quality",
                    "in": "query",
                    "schema": {"enum": list(LIVE_CLASSES)},
                },
                {"name": "travel_km", "in": "query", "schema": {"type": "number"}},
                {"name": "candidates", "in": "query", "schema": {"enum": ["communes", "villages"]}},
                fmt,
            ],
            "responses": {"200": _json({"type": "object"}), **_errors(400, 404)},
        }
    }
    paths["/api/v1/backhaul/cuts"] = {
        "get": {
            "summary": "Impact of fibre cuts: every single point of failure, or one link",
            "parameters": [{"name": "link", "in": "query", "schema": {"type": "string"}}, streams],
            "responses": {"200": _json({"type": "array"}), **_errors(400, 404)},
        }
    }
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    paths["/api/v1/siting"] = {
        "get": {
            "summary": "The latest siting run: chosen sites, cost, backhaul, gains",
            "responses": {"200": _json({"type": "object"}), **_errors(404)},
        },
        "post": {
            "summary": "Choose new sites for a budget (background job)",
            "parameters": [
                {"name": n, "in": "query", "schema": {"type": t}}
                for n, t in (
                    ("candidates", "integer"),
                    ("max_sites", "integer"),
                    ("budget_mvnd", "number"),
                    ("spacing_km", "number"),
                    ("candidate_spacing_km", "number"),
                )
            ]
            + [{"name": "method", "in": "query", "schema": {"enum": ["ip", "greedy"]}}],
            "responses": {"202": _json(job, "Accepted: follow the job"), **_errors(400, 404)},
        },
    }
    paths["/api/v1/scenarios"] = {
        "get": {
            "summary": "Saved what-if scenarios",
            "responses": {"200": _json({"type": "array"})},
        }
    }
    paths["/api/v1/scenarios/{name}"] = {
        "get": {
            "parameters": [name],
            "responses": {"200": _json({"type": "object"}), **_errors(404)},
        },
        "put": {
            "summary": "Create or replace a scenario (checked, never applied)",
            "parameters": [name],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["changes"],
                            "properties": {
                                "changes": {"type": "array", "items": {"type": "object"}}
                            },
                        }
                    }
                },
            },
            "responses": {"200": _json({"type": "object"}), **_errors(400)},
        },
    }
    paths["/api/v1/scenarios/{name}/preview"] = {
        "post": {
            "summary": "KPI deltas, and who gains or loses a class (background job)",
            "parameters": [name],
            "responses": {"202": _json(job), **_errors(404)},
        }
    }
    paths["/api/v1/scenarios/{name}/promote"] = {
        "post": {
            "summary": "Add the scenario's new sites to the registry as planned",
            "parameters": [name],
            "responses": {"200": _json({"type": "object"}), **_errors(404, 409)},
        }
    }
    for item in paths.values():  # writes need an editor's token
        for method, operation in item.items():
            if method != "get":
                operation["security"] = [{"bearer": []}]
                operation["responses"].update(_errors(401, 403))
    components = {layer: schemas.json_schema(model) for layer, model in BY_LAYER.items()}
    components["Error"] = ERROR
    components["Geometry"] = {
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {"type": {"type": "string"}, "coordinates": {"type": "array"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Coverage and infrastructure registry", "version": "1"},
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
