"""The pages in a real Chromium (Debian's), driven by Playwright over the app's real server.

Never downloads a browser: Chromium comes from Debian (``apt-get install chromium``); without
it these tests fail with a clear message, they are not skipped. They run on SQLite only (the
pages' database work is covered on both backends by test_pages.py).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("REGISTRY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only, on purpose (overrides conftest's two-backend parametrization)."""
    return sqlite_url


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("REGISTRY_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(api: Any) -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's package "
            "(`apt-get install chromium`) or set REGISTRY_CHROMIUM; "
            "never `playwright install`"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[dev]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        # No internet: anything not served by the app (map tiles) is refused at once.
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        yield tab
        context.close()
        browser.close()


@pytest.fixture
def covered(loaded: Any, dem: Path, runner: Any) -> Any:
    result = runner.invoke(args=["coverage", "compute"])
    assert result.exit_code == 0, result.output
    return loaded


def _verdicts(page: Any) -> dict[str, str]:
    rows = page.locator("#site-sellers tr").all()[1:]
    return {
        row.locator("td").first.inner_text(): row.locator("td.verdict").get_attribute("data-class")
        for row in rows
    }


def _served_km2(page: Any) -> str:
    """The site's served area by class (km², every technology)."""
    return page.inner_text("#site-coverage")


def test_pages_in_chromium(page: Any, api: Any, covered: Any, shots: Path) -> None:
    base = api.base
    blocked: list[str] = []  # anything the Content Security Policy refused
    page.on(
        "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
    )
    # sign in as an editor; then the dashboard (browser asks for English)
    page.goto(base + "/records/sites/new")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#f-username", "editor")
    page.fill("#f-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base + "/records/sites/new")
    page.goto(base + "/")
    assert page.locator("html").get_attribute("lang") == "en"
    page.locator("#commune-kpis").wait_for()
    page.screenshot(path=str(shots / "01-dashboard-en.png"), full_page=True)

    # switch to Vietnamese with the link; the choice is remembered
    page.click("#language-switch a[hreflang=vi]")
    page.wait_for_url(base + "/")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert "Dân số có sóng" in page.inner_text("#province-kpis")
    page.screenshot(path=str(shots / "02-dashboard-vi.png"), full_page=True)

    # search "binh lu" among communes and open Bình Lư
    page.goto(base + "/records/communes")
    page.fill("input[name=q]", "binh lu")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r"q=binh"))
    table = page.inner_text("#records")
    assert "Bình Lư" in table and "Tân Phong" not in table
    page.screenshot(path=str(shots / "03-search-binh-lu.png"), full_page=True)
    page.click("#records a:text('Bình Lư')")
    page.wait_for_url(re.compile(r"/records/communes/03390"))
    assert page.inner_text("h1") == "Bình Lư"
    page.screenshot(path=str(shots / "04-commune-binh-lu.png"), full_page=True)

    # the map: Leaflet loads with every layer; toggle the sellers layer off and on
    page.goto(base + "/map")
    page.wait_for_function("window.registryMapReady === true")
    control = page.locator(".leaflet-control-layers")
    control.wait_for()
    markers = page.locator("path.leaflet-interactive")
    assert markers.count() > 0
    sellers = control.locator("label", has_text="Sellers").locator("input")
    assert sellers.is_checked()
    before = markers.count()
    sellers.uncheck()
    assert not sellers.is_checked() and markers.count() < before
    page.screenshot(path=str(shots / "05-map-sellers-hidden.png"))
    sellers.check()
    assert markers.count() == before
    page.screenshot(path=str(shots / "06-map-all-layers.png"))

    # edit the site's tower height; recompute coverage with the button; watch the job
    page.goto(base + "/records/sites/VT-BL-01?lang=en")
    verdicts_before, served_before = _verdicts(page), _served_km2(page)
    assert "Lò Thị Mai" in verdicts_before
    page.screenshot(path=str(shots / "07-site-before-edit.png"), full_page=True)
    page.click("#edit-link")
    page.fill("#f-tower_height_m", "400")
    page.click("form.record button[type=submit]")
    assert "must be at most 300" in page.inner_text("[data-field=tower_height_m]")
    page.screenshot(path=str(shots / "08-site-edit-error.png"), full_page=True)
    page.fill("#f-tower_height_m", "3")
    page.click("form.record button[type=submit]")
    page.locator("#saved").wait_for()
    page.click("#recompute button")
    page.wait_for_url(re.compile(r"/jobs/"))
    page.screenshot(path=str(shots / "09-coverage-job-progress.png"))
    # generous: a cold numba cache compiles the kernels first
    page.wait_for_url(re.compile(r"/records/sites/VT-BL-01\?job="), timeout=300_000)
    verdicts_after, served_after = _verdicts(page), _served_km2(page)
    page.screenshot(path=str(shots / "10-site-after-recompute.png"), full_page=True)
    assert served_after != served_before, served_after
    assert verdicts_after["Lò Thị Mai"] != verdicts_before["Lò Thị Mai"], verdicts_after

    # a malformed upload: the row errors are shown and nothing is stored
    page.goto(base + "/import")
    page.select_option("#f-layer", "villages")
    page.set_input_files(
        "#f-file",
        files=[
            {
                "name": "villages.csv",
                "mimeType": "text/csv",
                "buffer": (
                    "code,name,commune_code,population,lon,lat\n"
                    "V-OK,Bản Tốt,03390,100,103.67,22.34\n"
                    "V-BAD,Bản Sai,03390,-5,103.67,22.34\n"
                    "V-FAR,Bản Xa,03390,10,22.34,103.67\n"
                ).encode(),
            }
        ],
    )
    page.click("#import-form button[type=submit]")
    page.locator("#error-details").wait_for(timeout=60_000)
    errors = page.inner_text("#error-details")
    assert "must be at least 0" in errors and "look swapped" in errors
    assert [line.split("\t")[1] for line in errors.splitlines()[1:]] == ["2", "3"]
    page.screenshot(path=str(shots / "11-import-row-errors.png"), full_page=True)
    assert api.get("villages/V-OK").status_code == 404
    assert not blocked, blocked


def test_map_label_and_names_reach_leaflet_as_text(page: Any, api: Any, loaded: Any) -> None:
    """``?label=`` and names from the data reach Leaflet as text: no markup, no link."""
    version = api.get("sellers/SEL-1").json()["properties"]["version"]
    name = '<i id="from-data">Mai</i>'
    assert api.patch("sellers/SEL-1", json={"name": name, "version": version}).ok
    label = '<b id="from-label">Chỗ tốt</b><a href="/records/sites">link</a>'
    page.goto(api.base + "/map?" + urlencode({"lat": 22.35, "lon": 103.67, "label": label}))
    page.wait_for_function("window.registryMapReady === true")
    tooltip = page.locator(".leaflet-tooltip")
    tooltip.wait_for()
    assert tooltip.inner_text() == label
    assert page.locator("#from-label").count() == 0
    assert page.locator(".leaflet-tooltip a").count() == 0
    html = page.content()
    assert '<i id="from-data">' not in html and "<i id=\\u0022" not in html
    assert "\\u0026lt;i id=" in html  # folium's JSON carries the escaped name, once
