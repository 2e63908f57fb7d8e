"""Coverage API: start a computation (a background job), follow it, download rasters, read a
point, calibrate against measurements. Thin: every call goes to ``registry.pipeline``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request, send_file, url_for

from registry import pipeline
from registry.errors import NotFoundError, ValidationError
from registry.web import sessions

bp = Blueprint("coverage", __name__, url_prefix="/api/v1")


def _runner() -> Any:
    return current_app.extensions["registry"]["jobs"]


@bp.post("/coverage")
def start() -> Any:
    """Start (or incrementally update) the coverage computation; 202 with the job to follow."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def body(progress: Any) -> dict[str, Any]:
        with app.app_context(), sessions()() as session:
            return pipeline.run_coverage(app.config, session, progress=progress)

    pipeline.working_dem(app.config)  # a missing DEM is the caller's 404 now, not a failed job
    job = _runner().submit("coverage", body)
    response = jsonify(job.to_dict())
    response.status_code = 202
    response.headers["Location"] = url_for("coverage.job", job_id=job.id)
    return response


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Any:
    found = _runner().get(job_id)
    if found is None:
        raise NotFoundError(f"no job {job_id!r}")
    return jsonify(found.to_dict())


@bp.get("/coverage")
def summary() -> Any:
    doc = pipeline.coverage_summary(current_app.config)
    folder = pipeline.coverage_dir(current_app.config)
    doc["rasters"] = {name: url_for("coverage.raster", name=name, _external=True)
                      for name in pipeline.RASTERS
                      if (folder / f"coverage_{name}.tif").exists()}
    return jsonify(doc)


@bp.get("/coverage/<name>.tif")
def raster(name: str) -> Any:
    return send_file(pipeline.raster_file(current_app.config, name), mimetype="image/tiff",
                     as_attachment=True, download_name=f"coverage_{name}.tif")


def _coordinate(name: str, low: float, high: float) -> float:
    try:
        value = float(request.args[name])
    except (KeyError, ValueError):
        value = float("nan")
    if not low <= value <= high:
        raise ValidationError(f"bad {name}", details=[
            {"field": name, "reason": f"is required, a number from {low} to {high}"}])
    return value


@bp.get("/coverage/point")
def point() -> Any:
    lon, lat = _coordinate("lon", -180, 180), _coordinate("lat", -90, 90)
    return jsonify(pipeline.coverage_at(current_app.config, [(lon, lat)])[0])


@bp.post("/coverage/calibration")
def calibration() -> Any:
    with sessions()() as session:
        return jsonify(pipeline.calibrate(current_app.config, session))
