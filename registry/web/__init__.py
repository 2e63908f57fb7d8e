"""Web layer: the JSON API and the pages, and the one error handler for both."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, current_app, jsonify, make_response, render_template, request
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from registry.errors import RegistryError, ValidationError
from registry.schemas import BAD_CHARACTERS, NUMBER

#: Deepest nesting of arrays and objects a JSON body may have (a GeoJSON MultiPolygon needs 4,
#: a scenario about 5); deeper bodies get a 400 before any code walks them recursively.
MAX_JSON_DEPTH = 32


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
    form = r"[+-]?[0-9]+" if integer else NUMBER
    value = (int if integer else float)(raw) if raw and re.fullmatch(form, raw) else None
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


def _json_depth(doc: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON document (iteratively)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


class RegistryRequest(Request):
    """Flask's request whose JSON bodies nest at most ``MAX_JSON_DEPTH`` deep (400 otherwise)."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            doc = super().get_json(force=force, silent=silent, cache=cache)
            too_deep = _json_depth(doc) > MAX_JSON_DEPTH
        except RecursionError:
            too_deep = True
        if too_deep:
            raise ValidationError(
                "the JSON body nests too deeply",
                details=[{"field": "body", "reason": f"nests deeper than {MAX_JSON_DEPTH} levels"}],
            )
        return doc


def safe_next(default: str) -> str:
    """The request's ``next`` if it is a same-site path (never another host), else ``default``;
    a 400 naming it if it holds control characters (a header cannot carry them)."""
    target = request.values.get("next", "")
    if BAD_CHARACTERS.search(target) or any(c in target for c in "\t\r\n"):
        raise ValidationError(
            "bad next", details=[{"field": "next", "reason": "must not contain control characters"}]
        )
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
    from registry.web import api, auth, coverage, i18n, measure, pages, readiness, sheets

    app.request_class = RegistryRequest
    hops = {
        name: int(app.config[f"PROXY_FIX_X_{name.upper()}"])
        for name in ("for", "proto", "host", "port", "prefix")
    }
    if any(hops.values()):  # behind that many proxies: trust their X-Forwarded-* headers
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=hops["for"],
            x_proto=hops["proto"],
            x_host=hops["host"],
            x_port=hops["port"],
            x_prefix=hops["prefix"],
        )
    i18n.init_app(app)
    auth.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(coverage.bp)
    app.register_blueprint(readiness.bp)
    app.register_blueprint(measure.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(sheets.bp)
    app.register_error_handler(RegistryError, error_response)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if _wants_json():
            response = jsonify({"error": exc.name, "message": exc.description})
            response.status_code = exc.code or 500
            for header, value in exc.get_headers():  # e.g. a 405's Allow
                if header.lower() != "content-type":
                    response.headers[header] = value
            return response
        return exc
