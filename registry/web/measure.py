"""Field measurements on the web: the phone page `/measure` (editors record an upload result at
a seller's place with the browser's GPS), the measured-beside-predicted page (scatter plots as
SVG, per-commune table, an error map, the calibrations) and their JSON/GeoJSON. Thin: every
call goes to `registry.services.measurements`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from registry.db import transaction
from registry.errors import ValidationError
from registry.models import TECHNOLOGIES
from registry.services import measurements, queries
from registry.web import query_number, sessions
from registry.web.auth import actor, requires

bp = Blueprint("measure", __name__)
SVG_SIZE_PX = 320
SVG_MARGIN_PX = 40


# ---------------------------------------------------------------- the phone page
def _number_or_none(name: str, low: float, high: float) -> float | None:
    raw = request.form.get(name, "").strip().replace(",", ".")
    return None if not raw else query_number(name, None, low, high, values={name: raw})


@bp.route("/measure", methods=["GET", "POST"])
@requires("editor")
def measure() -> Any:
    """Record an upload result: position from the browser's GPS, the seller it belongs to,
    the rate typed or pasted from the Speedtest app's share text."""
    form = request.form if request.method == "POST" else request.args
    error = None
    if request.method == "POST":
        try:
            lon = query_number("lon", None, -180, 180, required=True, values=request.form)
            lat = query_number("lat", None, -90, 90, required=True, values=request.form)
            with transaction(sessions()) as session:
                record = measurements.record_measurement(
                    current_app.config,
                    session,
                    actor=actor(),
                    lon=lon,
                    lat=lat,
                    seller_code=request.form.get("seller_code") or None,
                    ul_rate_mbps=_number_or_none("ul_rate_mbps", 0, 100_000),
                    dl_rate_mbps=_number_or_none("dl_rate_mbps", 0, 100_000),
                    technology=request.form.get("technology") or None,
                    share_text=request.form.get("share_text"),
                )
                code = record.code
            return redirect(url_for("measure.measure", saved=code, seller_code=record.seller_code))
        except ValidationError as exc:
            error = exc
    with sessions()() as session:
        sellers = [(s.code, s.name) for s in queries.sellers(session)]
    return render_template(
        "measure.html",
        sellers=sellers,
        technologies=TECHNOLOGIES,
        form=form,
        error=error,
        saved=request.args.get("saved"),
    ), (400 if error else 200)


# ---------------------------------------------------------------- measured beside predicted
def _scale(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = max((high - low) * 0.05, 1.0)
    return math.floor(low - pad), math.ceil(high + pad)


def scatter_svg(points: Sequence[dict[str, Any]], measured: str, predicted: str, unit: str) -> str:
    """Predicted (y) against measured (x) with the 1:1 line, as an inline SVG document."""
    pairs = [
        (p[measured], p[predicted])
        for p in points
        if p[measured] is not None and p[predicted] is not None
    ]
    size, m = SVG_SIZE_PX, SVG_MARGIN_PX
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" role="img" class="scatter" data-points="{len(pairs)}">',
        f"<title>{escape(_('Predicted against measured'))} ({escape(unit)})</title>",
        f'<rect x="{m}" y="0" width="{size - m}" height="{size - m}" fill="#fafafa" '
        'stroke="#999"/>',
    ]
    if pairs:
        lo, hi = _scale([v for pair in pairs for v in pair])

        def px(v: float) -> float:
            return m + (v - lo) / (hi - lo) * (size - m)

        def py(v: float) -> float:
            return (size - m) - (v - lo) / (hi - lo) * (size - m)

        parts.append(
            f'<line x1="{px(lo):.1f}" y1="{py(lo):.1f}" x2="{px(hi):.1f}" y2="{py(hi):.1f}" '
            'stroke="#377eb8" stroke-dasharray="4 3"/>'
        )
        parts += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="#e41a1c" fill-opacity="0.6"/>'
            for x, y in pairs
        ]
        parts += [
            f'<text x="{m}" y="{size - m + 14}" font-size="11">{lo:g}</text>',
            f'<text x="{size - 4}" y="{size - m + 14}" font-size="11" '
            f'text-anchor="end">{hi:g}</text>',
            f'<text x="{m - 4}" y="{size - m}" font-size="11" text-anchor="end">{lo:g}</text>',
            f'<text x="{m - 4}" y="11" font-size="11" text-anchor="end">{hi:g}</text>',
        ]
    parts += [
        f'<text x="{(size + m) / 2:.0f}" y="{size - 6}" font-size="12" text-anchor="middle">'
        f"{escape(_('measured'))} ({escape(unit)})</text>",
        f'<text x="12" y="{(size - m) / 2:.0f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {(size - m) / 2:.0f})">{escape(_("predicted"))} '
        f"({escape(unit)})</text>",
        "</svg>",
    ]
    return "".join(parts)


def error_map_svg(points: Sequence[dict[str, Any]], key: str) -> str:
    """Measurements at their lon/lat, coloured by their error (a map layer in SVG)."""
    size, pad = SVG_SIZE_PX, 10
    shown = [p for p in points if p[key] is not None]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" class="error-map" data-points="{len(shown)}">',
        f'<rect width="{size}" height="{size}" fill="#fff" stroke="#999"/>',
    ]
    if shown:
        lons, lats = [p["lon"] for p in shown], [p["lat"] for p in shown]
        span = max(max(lons) - min(lons), max(lats) - min(lats), 1e-3)
        for p in shown:
            x = pad + (p["lon"] - min(lons)) / span * (size - 2 * pad)
            y = size - pad - (p["lat"] - min(lats)) / span * (size - 2 * pad)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" stroke="#333" stroke-width="0.5" '
                f'fill="{measurements.error_colour(p[key], measurements.ERROR_SCALE[key])}">'
                f"<title>{escape(p['code'])}: {p[key]:+g}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


@bp.get("/measurements/compare")
def compare() -> Any:
    """Measured beside predicted: scatter plots, the per-commune table, the error map and
    the calibrations."""
    with sessions()() as session:
        doc = measurements.comparison(current_app.config, session)
        history = measurements.calibrations(session)
    points = doc["points"]
    return render_template(
        "compare.html",
        doc=doc,
        calibrations=history,
        rsrp_svg=Markup(scatter_svg(points, "measured_rsrp_dbm", "predicted_rsrp_dbm", "dBm")),
        ul_svg=Markup(scatter_svg(points, "measured_ul_mbps", "predicted_ul_mbps", "Mbps")),
        rsrp_map=Markup(error_map_svg(points, "rsrp_error_db")),
        ul_map=Markup(error_map_svg(points, "ul_error_mbps")),
    )


@bp.get("/api/v1/coverage/measured")
def comparison_json() -> Any:
    with sessions()() as session:
        return jsonify(measurements.comparison(current_app.config, session))


@bp.get("/api/v1/coverage/measured/errors")
def errors_geojson() -> Any:
    """The measurements as a GeoJSON layer with their errors and a colour by RSRP error
    (uplink where there is no RSRP), for QGIS or any web map."""
    with sessions()() as session:
        return jsonify(measurements.error_features(current_app.config, session))
