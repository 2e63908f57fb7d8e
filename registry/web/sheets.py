"""The commune sheet (one printable A4 page) and the commune's offline field pack (one
self-contained HTML file: the sheet and the interactive map, every asset inlined).

Both are Vietnamese unless ``?lang=en`` asks otherwise: they are made for commune offices.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import force_locale, format_date

from registry import io, maps
from registry.models import BY_LAYER
from registry.services import coverage, readiness, sheets
from registry.web import i18n, sessions
from registry.web.auth import with_nonce

bp = Blueprint("sheets", __name__, template_folder="templates")

#: The sheet's map image, longest side in pixels (sharp on A4 at about 150 dpi).
SHEET_MAP_PX = 1000
#: Sellers listed on the printed sheet (the rest are in the field pack): keeps it one A4 page.
SHEET_MAX_SELLERS = 12
#: Margin around the commune on its maps, as a share of its extent.
MAP_MARGIN = 0.06
#: Layers of the field pack's interactive map.
PACK_LAYERS = ("communes", "fibre_links", "sites", "villages", "sellers")


def _bounds(outline: Any) -> tuple[float, float, float, float]:
    west, south, east, north = outline.bounds
    dx, dy = (east - west) * MAP_MARGIN, (north - south) * MAP_MARGIN
    return west - dx, south - dy, east + dx, north + dy


def _language() -> str:
    chosen = request.args.get("lang")
    return chosen if chosen in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE


def sheet_context(config: Mapping[str, Any], session: Any, code: str) -> dict[str, Any]:
    """What the sheet template needs: the sheet, its static map (SVG) and the class colours."""
    inputs = readiness.load_inputs(config, session)
    sheet = sheets.commune_sheet(inputs, code)
    dem = coverage.dem_file(config)
    relief = maps.hillshade_image(
        dem,
        Path(config["DATA_DIR"]) / "hillshade",
        bounds_lonlat=_bounds(sheet.outline),
        max_px=SHEET_MAP_PX,
    )
    tif = inputs.coverage.path("service_class")
    svg = maps.sheet_map_svg(
        relief,
        outline=sheet.outline,
        points=[
            (r["lon"], r["lat"], maps.CLASS_COLOURS.get(r["service_class"]) or "#bbb", str(i))
            for i, r in enumerate(sheet.sellers, start=1)
        ],
        service_class_png=maps.service_class_image(tif, relief) if tif.exists() else None,
    )
    return {
        "sheet": sheet,
        "map_svg": svg,
        "relief": relief,
        "service_class_tif": tif if tif.exists() else None,
        "colours": maps.CLASS_COLOURS,
        "today": format_date(dt.date.today(), "long"),
        "max_sellers": SHEET_MAX_SELLERS,
    }


def _pack_map(session: Any, context: dict[str, Any]) -> str:
    """The commune's interactive map as one offline HTML document."""
    sheet, relief = context["sheet"], context["relief"]
    west, south, east, north = _bounds(sheet.outline)
    frames: dict[str, gpd.GeoDataFrame] = {}
    for name in PACK_LAYERS:
        frame = io.layer_frame(session, BY_LAYER[name])
        if name == "communes":
            frame = frame[frame["code"] == sheet.code]
        elif len(frame):
            frame = frame.cx[west:east, south:north]
        frames[name] = frame
    m = maps.base_map(relief)
    m.fit_bounds([[south, west], [north, east]])
    maps.registry_map(
        frames,
        m,
        service_class_tif=context["service_class_tif"],
        relief=relief,
        classes_on_relief=True,
    )
    return maps.offline_html(m)


def fieldpack_html(config: Mapping[str, Any], code: str, lang: str) -> str:
    """The field pack of commune ``code`` in ``lang``: one HTML file that needs no network
    (call inside a request context, e.g. ``app.test_request_context()``)."""
    with sessions()() as session, force_locale(lang):
        context = sheet_context(config, session, code)
        map_html = _pack_map(session, context)
        return render_template(
            "sheet.html",
            pack=True,
            map_srcdoc=html.escape(map_html, quote=True),
            lang=lang,
            **context,
        )


@bp.get("/communes/<code>/sheet")
def sheet(code: str) -> Any:
    """One printable A4 page for the commune (Vietnamese unless ``?lang=en``)."""
    lang = _language()
    with sessions()() as session, force_locale(lang):
        context = sheet_context(current_app.config, session, code)
        page = render_template("sheet.html", pack=False, lang=lang, **context)
    return Response(with_nonce(page), mimetype="text/html")


@bp.get("/communes/<code>/fieldpack")
def fieldpack(code: str) -> Any:
    """The commune's offline field pack, as a file to download."""
    lang = _language()
    page = fieldpack_html(current_app.config, code, lang)
    return Response(
        page,
        mimetype="text/html",
        headers={"Content-Disposition": f"attachment; filename=field-pack-{code}-{lang}.html"},
    )
