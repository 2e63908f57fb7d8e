"""Coverage API: start a computation (a background job), follow it, download rasters, read a
point, calibrate against measurements. Thin: every call goes to ``registry.services``; each
request resolves the current coverage version once and reads only it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file, url_for

from registry import jobs, maps
from registry.db import transaction
from registry.errors import NotFoundError, ValidationError
from registry.services import coverage, measurements, scenarios, siting
from registry.web import query_number, sessions
from registry.web.auth import actor

bp = Blueprint("coverage", __name__, url_prefix="/api/v1")
#: Rendered map tiles kept per worker (a few KB each; the province is ~2,000 tiles to zoom 13).
TILE_CACHE_SIZE = 4096


def _start(kind: str, **params: Any) -> Any:
    """Queue a background job; 202 with the job and its ``Location`` to follow."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return _job_response(jobs.start(app, kind, params, owner=actor()), status=202)


def _job_response(job_id: str, *, status: int = 200) -> Any:
    response = jsonify(jobs.get(sessions(), current_app.config, job_id))
    response.status_code = status
    response.headers["Location"] = url_for("coverage.job", job_id=job_id)
    return response


@bp.post("/coverage")
def start() -> Any:
    """Start (or incrementally update) the coverage computation; 202 with the job to follow."""
    coverage.working_dem(current_app.config)  # a missing DEM is a 404 now, not a failed job
    return _start("coverage")


@bp.post("/siting")
def start_siting() -> Any:
    """Choose new sites for a budget as a background job (query: candidates, max_sites,
    budget_mvnd, spacing_km, candidate_spacing_km, method)."""
    coverage.current(current_app.config)  # needs the current coverage: 404 if none
    options = {
        "candidates": query_number("candidates", 2000, 1, 20_000, integer=True),
        "max_sites": query_number("max_sites", 20, 1, 500, integer=True),
        "budget_mvnd": query_number("budget_mvnd", None, 0, 1e9),
        "spacing_km": query_number("spacing_km", 3.0, 0, 100),
        "candidate_spacing_km": query_number("candidate_spacing_km", 1.0, 0.1, 100),
        "method": request.args.get("method", "ip"),
    }
    if options["method"] not in siting.METHODS:
        raise ValidationError(
            "bad method", details=[{"field": "method", "reason": "must be ip or greedy"}]
        )
    return _start("siting", **options)


@bp.get("/siting")
def siting_result() -> Any:
    """The latest siting run: chosen sites with cost, backhaul and what each lifts."""
    return jsonify(siting.latest_siting(current_app.config))


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Any:
    """A job's status, progress and result (any worker process answers)."""
    return jsonify(jobs.get(sessions(), current_app.config, job_id))


@bp.post("/jobs/<job_id>/cancel")
def job_cancel(job_id: str) -> Any:
    """Cancel a queued job now, a running one at its next step; 409 if it has ended."""
    jobs.cancel(sessions(), current_app.config, job_id)
    return _job_response(job_id)


@bp.post("/jobs/<job_id>/rerun")
def job_rerun(job_id: str) -> Any:
    """Run a failed, cancelled or interrupted job again with its parameters (a new job)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return _job_response(jobs.rerun(app, job_id, owner=actor()), status=202)


@bp.get("/coverage")
def summary() -> Any:
    version = coverage.current(current_app.config)
    rasters = {
        name: url_for("coverage.raster", name=name, _external=True) for name in version.rasters()
    }
    return jsonify({**version.summary, "rasters": rasters})


@bp.get("/coverage/<name>.tif")
def raster(name: str) -> Any:
    return send_file(
        coverage.current(current_app.config).raster(name),
        mimetype="image/tiff",
        as_attachment=True,
        download_name=f"coverage_{name}.tif",
    )


@functools.lru_cache(maxsize=TILE_CACHE_SIZE)
def _cached_tile(path: str, _stamp: int, z: int, x: int, y: int) -> bytes:
    """A rendered tile, kept until the raster changes (its modification time is in the key)."""
    return maps.service_class_tile(Path(path), z, x, y)


@bp.get("/coverage/tiles/<int:z>/<int:x>/<int:y>.png")
def tile(z: int, x: int, y: int) -> Any:
    """The service-class coverage as XYZ map tiles (e.g. a QGIS "XYZ Tiles" connection)."""
    path = coverage.current(current_app.config).raster("service_class")
    stamp = path.stat().st_mtime_ns
    try:
        png = _cached_tile(str(path), stamp, z, x, y)
    except ValueError as exc:
        raise NotFoundError(str(exc)) from None
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.set_etag(f"{stamp}-{z}-{x}-{y}")
    return response.make_conditional(request)


@bp.get("/coverage/point")
def point() -> Any:
    lon = query_number("lon", None, -180, 180, required=True)
    lat = query_number("lat", None, -90, 90, required=True)
    return jsonify(coverage.coverage_at(current_app.config, [(lon, lat)])[0])


@bp.post("/coverage/calibration")
def calibration() -> Any:
    """Calibrate against the stored measurements (applied only where the held-out error
    drops); the stored calibration with its errors."""
    k = query_number("folds", measurements.CV_FOLDS, 2, 20, integer=True)
    with transaction(sessions()) as session:
        return jsonify(measurements.calibrate(current_app.config, session, actor=actor(), k=k))


@bp.get("/coverage/calibrations")
def calibrations() -> Any:
    with sessions()() as session:
        return jsonify(measurements.calibrations(session))


@bp.post("/coverage/calibration/revert")
def calibration_revert() -> Any:
    """Take the calibration in force out of force (the previous one is in force again)."""
    with transaction(sessions()) as session:
        return jsonify(measurements.revert(session, actor=actor()))


@bp.get("/scenarios")
def scenarios_list() -> Any:
    with sessions()() as session:
        return jsonify(scenarios.listing(session))


@bp.put("/scenarios/<name>")
def scenario_save(name: str) -> Any:
    """Create or replace a scenario: ``{"changes": [{action, layer, code, data}, ...]}``.
    The changes are checked against the registry (and rolled back); nothing is stored in it."""
    body = request.get_json(silent=True)
    changes = body.get("changes") if isinstance(body, dict) else None
    return jsonify(scenarios.save(sessions(), name, changes))


@bp.get("/scenarios/<name>")
def scenario_get(name: str) -> Any:
    with sessions()() as session:
        scenario = scenarios.get(session, name)
        return jsonify({"name": scenario.name, "changes": scenario.changes})


@bp.post("/scenarios/<name>/preview")
def scenario_preview(name: str) -> Any:
    """KPI deltas and the sellers and villages that gain or lose a class, as a background job."""
    with sessions()() as session:
        scenarios.get(session, name)  # 404 now rather than a failed job
    coverage.current(current_app.config)  # the baseline coverage must exist
    return _start("scenario-preview", name=name)


@bp.post("/scenarios/<name>/promote")
def scenario_promote(name: str) -> Any:
    """Add the scenario's new sites and their sectors to the registry as planned."""
    return jsonify(scenarios.promote(sessions(), name, actor=actor()))
