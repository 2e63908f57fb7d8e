"""The HTML pages through the Flask test client, on both database backends."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import registry
from registry import jobs
from registry.models import Sector, Site

PAGES = (
    "/",
    "/map",
    "/import",
    "/events",
    "/records/communes",
    "/records/villages",
    "/records/sites",
    "/records/fibre_links",
    "/records/sellers",
    "/records/measurements",
    "/records/events",
    "/records/fibre_nodes",
    "/records/sites/VT-BL-01",
    "/records/sellers/SEL-1",
    "/records/villages/V-BL-1",
    "/records/communes/03390",
    "/records/sectors/VT-BL-01-1",
    "/records/sites/VT-BL-01/edit",
    "/records/sites/new",
    "/records/fibre_links/FL-1/edit",
)


def _text(response: Any) -> str:
    return response.get_data(as_text=True)


def _table(response: Any) -> str:
    """The page's records table (so menus and filters do not count as hits)."""
    return _text(response).split('id="records"', 1)[1].split("</table>", 1)[0]


def _wait(app: Any, location: str) -> None:
    job_id = location.split("?")[0].rsplit("/", 1)[-1]
    job = jobs.wait(app.extensions["registry"]["sessions"], app.config, job_id, timeout_s=120)
    assert job["status"] in ("done", "failed")


@pytest.fixture
def covered(loaded: Any, dem: Path, runner: Any) -> Any:
    result = runner.invoke(args=["coverage", "compute"])
    assert result.exit_code == 0, result.output
    return loaded


def test_every_page_renders_without_coverage(client: Any, loaded: Any) -> None:
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
    assert "No coverage has been computed yet" in _text(client.get("/?lang=en"))
    assert client.get("/records/nothing").status_code == 404
    assert client.get("/records/sites/NOPE").status_code == 404


def test_every_page_renders_with_coverage(client: Any, covered: Any) -> None:
    for path in PAGES:
        response = client.get(path, headers={"Accept-Language": "en"})
        assert response.status_code == 200, path
    home = _text(client.get("/", headers={"Accept-Language": "en"}))
    assert "Population with any signal" in home and 'id="commune-kpis"' in home
    assert "Bình Lư" in home and 'class="bar"' in home
    seller = _text(client.get("/records/sellers/SEL-1?lang=en"))
    assert "Livestream verdict" in seller and 'class="confidence" data-confidence="' in seller
    assert 'id="confidence-kpis"' in home and "How sure the verdicts are" in home
    site = _text(client.get("/records/sites/VT-BL-01?lang=en"))
    assert 'id="site-coverage"' in site and "Lò Thị Mai" in site
    assert 'data-confidence="' in site.split('id="site-sellers"')[1]
    sellers = _text(client.get("/records/sellers?lang=en"))
    assert 'class="swatch cls-' in sellers
    events = client.get("/events?streams=3&quality=sd_live&candidates=villages&lang=en")
    assert events.status_code == 200
    assert "Bản Nà Khum" in _text(events) and 'id="event-places"' in _text(events)
    assert 'data-confidence="' in _text(events)
    bad = client.get("/events?streams=0&lang=en")
    assert bad.status_code == 400 and "must be an integer from 1 to 10000" in _text(bad)


def test_map_page_is_live_and_offline(client: Any, covered: Any) -> None:
    page = _text(client.get("/map"))
    assert "L.map(" in page and "L.control.layers(" in page
    assert '<script src="http' not in page and '<link rel="stylesheet" href="http' not in page
    for title in ("Sites", "Sellers", "Villages", "Fibre", "Livestream class"):
        assert title in page
    assert "registryMapReady" in page and "Borderline seller" in page
    # cached: the same page apart from each response's CSP nonce
    first, second = (
        re.sub(r'nonce="[^"]+"', "", client.get("/map").get_data(as_text=True)) for _ in range(2)
    )
    assert first == second


def test_search_ignores_diacritics(client: Any, loaded: Any) -> None:
    page = _table(client.get("/records/communes?q=binh+lu"))
    assert "Bình Lư" in page and "Tân Phong" not in page
    page = _table(client.get("/records/villages?q=NA KHUM"))
    assert "Bản Nà Khum" in page and "Thôn Sơn Bình" not in page
    page = _table(client.get("/records/sites?commune=03390&status=active"))
    assert "VT-BL-01" in page and "VT-TP-01" not in page
    assert "VT-BL-01" not in _table(client.get("/records/sites?status=down"))
    page = _text(client.get("/records/villages?q=<script>"))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_language_switch(client: Any, loaded: Any) -> None:
    english = _text(client.get("/records/sites", headers={"Accept-Language": "en-US,en"}))
    assert "Tower height (m)" in english and 'lang="en"' in english
    vietnamese = _text(client.get("/records/sites", headers={"Accept-Language": "vi"}))
    assert "Chiều cao cột (m)" in vietnamese and 'lang="vi"' in vietnamese
    switched = client.get("/lang/vi?next=/records/sites", headers={"Accept-Language": "en"})
    assert switched.status_code == 303 and switched.headers["Location"].endswith("/records/sites")
    after = _text(client.get("/records/sites", headers={"Accept-Language": "en"}))
    assert "Chiều cao cột (m)" in after  # the cookie wins over the browser
    assert client.get("/lang/en?next=//evil.example").headers["Location"] == "/"
    via_query = _text(client.get("/records/communes?lang=en"))
    assert "Population" in via_query
    # numbers per language: 1,234 in English, 1.234 in Vietnamese
    assert "10,000" in _text(client.get("/records/fibre_links?lang=en"))
    assert "10.000" in _text(client.get("/records/fibre_links?lang=vi"))


def _site(app: Any, code: str = "VT-BL-01") -> Site:
    with app.extensions["registry"]["sessions"]() as session:
        site = session.scalar(select(Site).where(Site.code == code))
        session.expunge(site)
        return site


def _form(client: Any, code: str = "VT-BL-01") -> dict[str, str]:
    page = _text(client.get(f"/records/sites/{code}/edit"))
    import re

    values = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', page))
    values.update(
        re.findall(
            r'name="([a-z_]+)">(?:<option value=""></option>)?\s*'
            r'(?:<option value="[^"]*" >[^<]*</option>)*'
            r'<option value="([^"]*)" selected',
            page,
        )
    )
    values["move_antennas"] = "on"
    return values


def test_edit_site_success(client: Any, app: Any, loaded: Any) -> None:
    form = _form(client)
    assert form["tower_height_m"] == "30" and form["status"] == "active"
    form.update(tower_height_m="45", status="down")
    response = client.post("/records/sites/VT-BL-01/edit", data=form)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/records/sites/VT-BL-01")
    site = _site(app)
    assert site.tower_height_m == 45 and site.status == "down" and site.version == 2
    with app.extensions["registry"]["sessions"]() as session:
        heights = session.scalars(
            select(Sector.height_m).where(Sector.site_code == "VT-BL-01")
        ).all()
    assert heights == [43, 43]  # the antennas moved up with the tower
    page = _text(client.get(response.headers["Location"] + "&lang=en"))
    assert "Saved." in page and "45" in page


def test_edit_site_validation_errors(client: Any, app: Any, loaded: Any) -> None:
    form = _form(client)
    form.update(tower_height_m="400", operator="Viettel", lat="abc", status="broken")
    response = client.post(
        "/records/sites/VT-BL-01/edit", data=form, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 400
    page = _text(response)
    for reason in (
        "must be at most 300",
        "does not match the expected form",
        "must be one of planned, active, down",
        "cannot be read",
    ):
        assert reason in page, reason
    assert 'value="400"' in page  # the typed values are shown again
    site = _site(app)
    assert site.tower_height_m == 30 and site.version == 1
    # a stale version is a conflict, shown on the form; nothing stored
    form = _form(client)
    form.update(version="7", tower_height_m="31")
    stale = client.post("/records/sites/VT-BL-01/edit", data=form)
    assert stale.status_code == 409 and "is at version 1" in _text(stale)
    assert _site(app).tower_height_m == 30
    # same messages as the API for a new record
    created = client.post("/records/sites/new", data={"code": "VT-NEW", "name": "<b>x</b>"})
    assert created.status_code == 400
    text = _text(created)
    assert "is required" in text and "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text


def test_create_site(client: Any, app: Any, loaded: Any) -> None:
    data = {
        "code": "VT-NEW",
        "name": "Trạm mới",
        "operator": "452-04",
        "commune_code": "03390",
        "tower_height_m": "35",
        "status": "planned",
        "backhaul_kind": "microwave",
        "backhaul_capacity_mbps": "300",
        "lon": "103.69",
        "lat": "22.36",
    }
    response = client.post("/records/sites/new", data=data)
    assert response.status_code == 303, _text(response)
    assert _site(app, "VT-NEW").name == "Trạm mới"
    again = client.post("/records/sites/new", data=data)
    assert again.status_code == 409 and "already exists" in _text(again)


def test_recompute_button_runs_a_job(client: Any, app: Any, loaded: Any, dem: Path) -> None:
    response = client.post("/coverage/recompute", data={"next": "/records/sites/VT-BL-01"})
    assert response.status_code == 303 and "/jobs/" in response.headers["Location"]
    _wait(app, response.headers["Location"])
    page = _text(client.get(response.headers["Location"]))
    assert 'data-status="done"' in page and 'href="/records/sites/VT-BL-01"' in page
    site = _text(client.get("/records/sites/VT-BL-01?lang=en"))
    assert 'id="site-coverage"' in site and "No coverage has been computed" not in site
    assert client.get("/jobs/nope").status_code == 404


def _count(app: Any, model: Any) -> int:
    with app.extensions["registry"]["sessions"]() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_import_with_bad_rows_stores_nothing(client: Any, app: Any, loaded: Any) -> None:
    before = _count(app, Site)
    csv = (
        "code,name,operator,tower_height_m,status,backhaul_kind,backhaul_capacity_mbps,"
        "lon,lat\n"
        "VT-X1,Good,452-04,30,active,fibre,100,103.6,22.3\n"
        "VT-X2,Bad height,452-04,999,active,fibre,100,103.6,22.3\n"
        "VT-X3,Bad place,452-04,30,active,fibre,100,22.3,103.6\n"
    )
    response = client.post(
        "/import",
        data={"layer": "sites", "file": (__import__("io").BytesIO(csv.encode()), "sites.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    _wait(app, response.headers["Location"])
    page = _text(client.get(response.headers["Location"], headers={"Accept-Language": "en"}))
    assert 'id="error-details"' in page and "nothing was stored" in page
    assert "must be at most 300" in page and "look swapped" in page
    assert _count(app, Site) == before
    # unreadable files are reported at once
    bad = client.post(
        "/import",
        data={"file": (__import__("io").BytesIO(b"x"), "a.csv")},
        content_type="multipart/form-data",
        headers={"Accept-Language": "en"},
    )
    assert bad.status_code == 400 and "say which" in _text(bad)


def test_import_success(client: Any, app: Any, loaded: Any) -> None:
    csv = "code,name,commune_code,population,lon,lat\nV-NEW,Bản Mới,03390,100,103.67,22.34\n"
    response = client.post(
        "/import",
        data={"layer": "villages", "file": (__import__("io").BytesIO(csv.encode()), "v.csv")},
        content_type="multipart/form-data",
    )
    _wait(app, response.headers["Location"])
    page = _text(client.get(response.headers["Location"]))
    assert 'data-status="done"' in page and 'id="import-report"' in page
    assert "Bản Mới" in _text(client.get("/records/villages?q=ban moi"))


def test_every_ui_string_has_a_vietnamese_translation() -> None:
    """Strings marked in views and templates are all in the compiled Vietnamese catalogue."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.mofile import read_mo

    root = Path(registry.__file__).parent
    found = {
        m[2] if isinstance(m[2], str) else m[2][0]
        for m in extract_from_dir(
            root,
            [("web/**.py", "python"), ("web/templates/**.html", "jinja2")],
            keywords={**DEFAULT_KEYWORDS, "_l": None},
        )
    }
    with (root / "translations/vi/LC_MESSAGES/messages.mo").open("rb") as f:
        catalogue = read_mo(f)
    missing = sorted(s for s in found if not (catalogue.get(s) and catalogue.get(s).string))
    assert found and not missing, missing
