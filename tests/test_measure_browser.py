"""The phone page `/measure` in a real Chromium (Debian's) on a 390 px screen with a mocked
GPS: an editor records an upload result at a seller's place; and the measured-beside-predicted
page. SQLite only, like tests/test_browser.py (whose fixtures it uses)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from registry.models import Measurement
from tests.conftest import PASSWORD
from tests.test_browser import covered, db_url, page, shots  # noqa: F401  (fixtures)
from tests.test_measurements import _field_measurements

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


def test_measure_page_records_with_the_phones_position(
    app: Any,
    page: Any,  # noqa: F811
    api: Any,
    covered: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    base = api.base
    page.context.grant_permissions(["geolocation"], origin=base)
    page.context.set_geolocation({"latitude": 22.3461, "longitude": 103.6731, "accuracy": 8})
    page.set_viewport_size(PHONE)
    page.goto(base + "/lang/vi")
    page.goto(base + "/measure")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#f-username", "editor")
    page.fill("#f-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base + "/measure")
    assert page.locator("html").get_attribute("lang") == "vi"
    page.wait_for_function("document.getElementById('gps-status').dataset.ready === '1'")
    assert page.input_value("#f-lat") == "22.346100"
    assert page.input_value("#f-lon") == "103.673100"
    width = page.evaluate("document.documentElement.scrollWidth")
    form_width = page.evaluate("document.getElementById('measure-form').scrollWidth")
    assert form_width <= PHONE["width"], (width, form_width)
    page.select_option("#f-seller_code", "SEL-1")
    page.fill("#f-share_text", "Connection Type: Lte\nDownload: 24.51 Mbps\nUpload: 6.20 Mbps")
    page.screenshot(path=str(shots / "measure-390px-vi.png"), full_page=True)
    page.click("#measure-submit")
    page.locator("#saved").wait_for()
    code = page.get_attribute("#saved", "data-code")
    with app.extensions["registry"]["sessions"]() as session:
        m = session.query(Measurement).filter(Measurement.code == code).one()
        assert (m.seller_code, m.ul_rate_mbps, m.technology) == ("SEL-1", 6.2, "4G")
        assert (round(m.geom.x, 4), round(m.geom.y, 4)) == (103.6731, 22.3461)
    _field_measurements(app, 8.0, n=80)
    assert api.post("coverage/calibration").json()["status"] == "applied"
    page.set_viewport_size({"width": 1180, "height": 900})
    page.goto(base + "/measurements/compare")
    page.locator("#scatter-ul svg").wait_for()
    assert page.locator("#scatter-ul circle").count() >= 1
    assert page.locator("#scatter-rsrp circle").count() >= 80
    assert page.locator("#calibrations tr[data-status=applied]").count() == 1
    page.screenshot(path=str(shots / "measured-vs-predicted.png"), full_page=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/map")
    page.wait_for_function("window.registryMapReady === true")
    layer = page.locator(".leaflet-control-layers label", has_text="Phép đo: sai số dự báo")
    assert layer.locator("input").is_checked()
    assert not errors
    page.screenshot(path=str(shots / "map-measurement-errors.png"))
