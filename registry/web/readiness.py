"""Readiness API: seller verdicts, KPIs, event places, fibre-cut impact (GeoJSON, CSV, JSON) and
path profile pictures (SVG).

Thin: parse the query, call ``registry.services.readiness``, shape the answer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_babel import gettext as _

from registry import io
from registry.errors import ValidationError
from registry.services import profile, readiness
from registry.web import query_number, reasons, sessions

bp = Blueprint("readiness", __name__, url_prefix="/api/v1")


def _inputs(session: Any) -> readiness.ReadinessInputs:
    streams = query_number("concurrent_streams", None, 1, 1000, integer=True)
    return readiness.load_inputs(current_app.config, session, concurrent_streams=streams)


def _table(
    rows: list[dict[str, Any]], name: str, *, geo: bool, names: dict[str, str] | None = None
) -> Any:
    """``rows`` in the asked format, each reason with its sentence in the asked language
    (``?lang=vi|en``, else Accept-Language)."""
    rows = reasons.explained(rows, names=names)
    fmt = request.args.get("format", "geojson" if geo else "json")
    if fmt == "csv":
        return Response(
            io.records_csv(reasons.flat(rows)),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={name}.csv"},
        )
    if fmt == "geojson" and geo:
        return Response(io.records_geojson(rows), mimetype="application/geo+json")
    if fmt == "json":
        return jsonify(rows)
    raise ValidationError(
        "bad format",
        details=[
            {
                "field": "format",
                "reason": ("must be geojson, csv or json" if geo else "must be json or csv"),
            }
        ],
    )


@bp.get("/readiness/sellers")
def sellers() -> Any:
    """Every seller's verdict, reasons and better spot."""
    with sessions()() as session:
        return _table(readiness.seller_rows(_inputs(session)), "seller_verdicts", geo=True)


@bp.get("/readiness/kpis")
def kpis() -> Any:
    """Coverage KPIs per commune and for the province (``?province=``) or all (first row)."""
    with sessions()() as session:
        kpis = readiness.kpis(_inputs(session), province=request.args.get("province") or None)
    if request.args.get("format", "json") != "json":
        return _table(kpis.rows, "coverage_kpis", geo=False)
    stated = reasons.explained([kpis.stated_figures])[0] if kpis.stated_figures else None
    return jsonify({"rows": kpis.rows, "stated_figures": stated})


@bp.get("/readiness/events")
def events() -> Any:
    """Event places ranked for ``streams`` simultaneous streams at ``quality``; when none is
    feasible, ``?format=json`` adds what is possible (``alternatives``)."""
    streams = query_number("streams", None, 1, 10_000, integer=True, required=True)
    with sessions()() as session:
        ranked = readiness.event_places(
            _inputs(session),
            streams=streams,
            quality=request.args.get("quality", "hd_live"),
            travel_radius_m=query_number("travel_km", 10.0, 0, 200) * 1000,
            candidates=request.args.get("candidates", "communes"),
        )
    if request.args.get("format") == "json":
        return jsonify(
            {
                "places": reasons.explained(ranked.rows),
                "alternatives": reasons.explained(ranked.alternatives, names=ranked.names),
            }
        )
    return _table(ranked.rows, "event_places", geo=True)


@bp.get("/backhaul/cuts")
def cuts() -> Any:
    """Impact of every single point of failure (or of one link: ``?link=CODE``)."""
    with sessions()() as session:
        rows = readiness.cuts(_inputs(session), link_code=request.args.get("link"))
    return jsonify(rows)


def _profile_labels() -> profile.ProfileLabels:
    """The picture's words in the request's language."""
    return profile.ProfileLabels(
        distance_axis=_("Distance from the phone (km)"),
        height_axis=_("Height above sea level (m)"),
        terrain=_("Terrain with the earth bulge (k = 4/3)"),
        ray=_("Direct ray"),
        fresnel=_("First Fresnel zone"),
        edges=_("Diffraction edges (Deygout)"),
        phone=_("Phone"),
        # placeholders filled by the service (gettext without arguments leaves them)
        site=_("Site %(code)s"),
        ridge=_("Limiting ridge: %(km)s km, %(m)s m"),
        clear=_("Clear path; terrain closest to the ray: %(km)s km, %(m)s m"),
        title=_("%(a)s → %(b)s: %(mhz)s MHz, diffraction loss %(db)s dB"),
    )


def _svg(data: bytes) -> Response:
    response = Response(data, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/sellers/<code>/profile.svg")
def seller_profile(code: str) -> Any:
    """The path profile from a seller to its serving site (SVG)."""
    with sessions()() as session:
        return _svg(
            profile.seller_profile_svg(current_app.config, session, code, _profile_labels())
        )


@bp.get("/coverage/profile.svg")
def point_profile() -> Any:
    """The path profile from any point to a site: ``?lon=&lat=&site=`` (SVG)."""
    lon = query_number("lon", None, -180, 180, required=True)
    lat = query_number("lat", None, -90, 90, required=True)
    site = request.args.get("site", "").strip()
    if not site:
        raise ValidationError(
            "bad site", details=[{"field": "site", "reason": "is required, a site code"}]
        )
    with sessions()() as session:
        return _svg(
            profile.point_profile_svg(
                current_app.config, session, lon, lat, site, _profile_labels()
            )
        )
