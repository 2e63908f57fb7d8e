"""The `flask` commands: they call the same functions as the API and fail with clear messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from registry import db
from registry.models import User
from tests.conftest import sample_layers
from tests.test_io import OPENCELLID, geojson_bytes, snapshot


def test_db_upgrade_current_and_reset(runner: Any, app: Any) -> None:
    head = db.head_revision()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0 and f"revision {head}" in result.output
    assert runner.invoke(args=["db", "current"]).output.strip() == f"current {head}, head {head}"
    assert runner.invoke(args=["db", "reset"], input="n\n").exit_code == 1  # asks first
    assert runner.invoke(args=["db", "reset", "--yes"]).exit_code == 0
    with app.extensions["registry"]["sessions"]() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0


def test_import_and_export_every_format(runner: Any, app: Any, tmp_path: Path) -> None:
    for layer, rows in sample_layers().items():
        path = tmp_path / f"{layer}.geojson"
        path.write_bytes(geojson_bytes(layer, rows))
        result = runner.invoke(args=["import", str(path)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output.splitlines()[-1])["created"] == {layer: len(rows)}
    cells = tmp_path / "cells.csv"
    cells.write_text(OPENCELLID)
    assert runner.invoke(args=["import", str(cells), "--format", "opencellid"]).exit_code == 0

    assert runner.invoke(args=["export", str(tmp_path / "all.gpkg")]).exit_code == 0
    assert (tmp_path / "all.gpkg").stat().st_size > 0
    for fmt in ("geojson", "csv"):
        result = runner.invoke(args=["export", str(tmp_path / fmt), "--format", fmt])
        assert result.exit_code == 0, result.output
        assert len(list((tmp_path / fmt).glob(f"*.{fmt}"))) == 9
    one = tmp_path / "sites.csv"
    assert (
        runner.invoke(args=["export", str(one), "--format", "csv", "--layer", "sites"]).exit_code
        == 0
    )
    assert one.read_text("utf-8-sig").splitlines()[0].startswith("code,name,")


def test_bad_import_exits_non_zero_and_changes_nothing(
    runner: Any, app: Any, loaded: Any, tmp_path: Path
) -> None:
    path = tmp_path / "v.csv"
    path.write_text("code,name,commune_code,population,lon,lat\nV-9,Bản 9,03390,-4,103.6,22.3\n")
    before = snapshot(app)
    result = runner.invoke(args=["import", str(path), "--layer", "villages"])
    assert result.exit_code != 0
    assert "villages row 1: population: must be at least 0" in result.output
    assert snapshot(app) == before
    missing = runner.invoke(args=["import", str(tmp_path / "nope.csv")])
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_render_map(runner: Any, app: Any, loaded: Any, tmp_path: Path) -> None:
    out = tmp_path / "m.html"
    result = runner.invoke(args=["render-map", "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text("utf-8")
    for text in ("Bình Lư", "VT-BL-01", "Lò Thị Mai", "Synthetic demo data", "QL4D"):
        assert text in html or json.dumps(text)[1:-1] in html
    # Works with no internet: every library is inlined, no script or stylesheet is fetched.
    assert '<script src="http' not in html and '<link rel="stylesheet" href="http' not in html
    assert "L.map(" in html and "leafletjs.com" in html  # Leaflet itself is inlined


def test_home_page_and_served_map(client: Any, runner: Any, loaded: Any) -> None:
    assert runner.invoke(args=["render-map"]).exit_code == 0
    page = client.get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "registry.html" in text and "Lai Châu" in text
    served = client.get("/maps/registry.html")
    assert served.status_code == 200 and b"leaflet" in served.data.lower()
    assert client.get("/maps/../pyproject.toml").status_code == 404
    assert client.get("/maps/nothing.html").status_code == 404
