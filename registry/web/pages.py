"""HTML pages: a home page with the registry's counts and the map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, render_template, send_from_directory
from sqlalchemy import func, select

from registry.models import BY_LAYER
from registry.web import sessions

bp = Blueprint("pages", __name__, template_folder="templates")


@bp.get("/")
def home() -> Any:
    with sessions()() as session:
        counts = {layer: session.scalar(select(func.count()).select_from(model))
                  for layer, model in BY_LAYER.items()}
    maps = sorted(p.name for p in Path(current_app.config["MAPS_DIR"]).glob("*.html"))
    return render_template("home.html", counts=counts, maps=maps)


@bp.get("/maps/<name>")
def rendered_map(name: str) -> Any:
    if not name.endswith(".html"):
        abort(404)
    return send_from_directory(current_app.config["MAPS_DIR"], name)
