"""Web layer: the JSON API and the pages, and the one error handler for both."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from registry.errors import RegistryError, ValidationError


def sessions() -> sessionmaker[Session]:
    return current_app.extensions["registry"]["sessions"]


def query_number(name: str, default: Any, low: float, high: float, *, integer: bool = False,
                 required: bool = False) -> Any:
    """A number from the query string within [low, high]; a clear 400 naming it otherwise."""
    raw = request.args.get(name)
    if raw is None and not required:
        return default
    try:
        value = (int if integer else float)(raw) if raw is not None else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # NaN fails the comparison too
        kind = "an integer" if integer else "a number"
        raise ValidationError(f"bad {name}", details=[{"field": name, "reason": (
            f"{'is required, ' if required else 'must be '}{kind} from {low} to {high}")}])
    return value


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def init_app(app: Flask) -> None:
    from registry.web import api, coverage, i18n, pages, readiness

    i18n.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(coverage.bp)
    app.register_blueprint(readiness.bp)
    app.register_blueprint(pages.bp)

    @app.errorhandler(RegistryError)
    def _registry_error(exc: RegistryError) -> Any:
        if _wants_json():
            return jsonify(exc.to_dict()), exc.status
        return render_template("error.html", error=exc, status=exc.status), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if _wants_json():
            body = {"error": exc.name, "message": exc.description}
            return jsonify(body), exc.code or 500
        return exc
