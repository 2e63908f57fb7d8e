"""Readiness API: seller verdicts, KPIs, event places and fibre-cut impact (GeoJSON, CSV, JSON).

Thin: parse the query, call ``registry.services.readiness``, shape the answer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from registry import io
from registry.errors import ValidationError
from registry.services import readiness
from registry.web import query_number, sessions

bp = Blueprint("readiness", __name__, url_prefix="/api/v1")


def _inputs(session: Any) -> readiness.ReadinessInputs:
    streams = query_number("concurrent_streams", None, 1, 1000, integer=True)
    return readiness.load_inputs(current_app.config, session, concurrent_streams=streams)


def _table(rows: list[dict[str, Any]], name: str, *, geo: bool) -> Any:
    fmt = request.args.get("format", "geojson" if geo else "json")
    if fmt == "csv":
        return Response(
            io.records_csv(rows),
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
    if request.args.get("format") == "csv":
        return _table(kpis.rows, "coverage_kpis", geo=False)
    return jsonify({"rows": kpis.rows, "stated_figures": kpis.stated_figures})


@bp.get("/readiness/events")
def events() -> Any:
    """Event places ranked for ``streams`` simultaneous streams at ``quality``."""
    streams = query_number("streams", None, 1, 10_000, integer=True, required=True)
    with sessions()() as session:
        rows = readiness.event_places(
            _inputs(session),
            streams=streams,
            quality=request.args.get("quality", "hd_live"),
            travel_radius_m=query_number("travel_km", 10.0, 0, 200) * 1000,
            candidates=request.args.get("candidates", "communes"),
        )
    return _table(rows, "event_places", geo=True)


@bp.get("/backhaul/cuts")
def cuts() -> Any:
    """Impact of every single point of failure (or of one link: ``?link=CODE``)."""
    with sessions()() as session:
        rows = readiness.cuts(_inputs(session), link_code=request.args.get("link"))
    return jsonify(rows)
