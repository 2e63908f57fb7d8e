"""Web layer: the JSON API and the pages, and the one error handler for both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, make_response, render_template, request
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from registry.errors import RegistryError, ValidationError


def sessions() -> sessionmaker[Session]:
    return current_app.extensions["registry"]["sessions"]


def query_number(
    name: str,
    default: Any,
    low: float,
    high: float,
    *,
    integer: bool = False,
    required: bool = False,
    values: Mapping[str, str] | None = None,
) -> Any:
    """A number from the query string (or ``values``, e.g. a posted form) within [low, high];
    a clear 400 naming it otherwise."""
    raw = (request.args if values is None else values).get(name)
    if raw is None and not required:
        return default
    try:
        value = (int if integer else float)(raw) if raw is not None else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # NaN fails the comparison too
        kind = "an integer" if integer else "a number"
        raise ValidationError(
            f"bad {name}",
            details=[
                {
                    "field": name,
                    "reason": (
                        f"{'is required, ' if required else 'must be '}{kind} from {low} to {high}"
                    ),
                }
            ],
        )
    return value


def safe_next(default: str) -> str:
    """The request's ``next`` if it is a same-site path (never another host), else ``default``."""
    target = request.values.get("next", "")
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.netloc or parts.scheme:
        return default
    return target


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(exc: RegistryError) -> Any:
    """JSON for the API, the error page for pages; 401s say how to authenticate."""
    if _wants_json():
        response = jsonify(exc.to_dict())
    else:
        response = make_response(render_template("error.html", error=exc, status=exc.status))
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="registry"'
    return response


def init_app(app: Flask) -> None:
    from registry.web import api, auth, coverage, i18n, measure, pages, readiness

    i18n.init_app(app)
    auth.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(coverage.bp)
    app.register_blueprint(readiness.bp)
    app.register_blueprint(measure.bp)
    app.register_blueprint(pages.bp)
    app.register_error_handler(RegistryError, error_response)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if _wants_json():
            body = {"error": exc.name, "message": exc.description}
            return jsonify(body), exc.code or 500
        return exc
