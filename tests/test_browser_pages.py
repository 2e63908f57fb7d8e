"""Phone, print and offline checks in Debian's Chromium (as test_browser.py: Playwright over the
app's real server, never a downloaded browser, no internet): the seller page and the event tool
on a 390 px phone in Vietnamese, the commune sheet printed to one A4 page, the map's offline
relief and metric scale, and a field pack opened from ``file://`` with networking off.

Screenshots go to ``REGISTRY_SCREENSHOTS`` (a temporary folder otherwise).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import test_browser

CHROMIUM, CHROMIUM_ARGS = test_browser.CHROMIUM, test_browser.CHROMIUM_ARGS
# the fixtures of test_browser.py: SQLite only, the sample registry with coverage, screenshots
db_url, covered, shots = test_browser.db_url, test_browser.covered, test_browser.shots

pytestmark = pytest.mark.browser

#: An iPhone 12–15 class screen, in CSS pixels.
PHONE = {"width": 390, "height": 844}
#: Smallest tap target (WCAG 2.5.5, Apple's HIG), CSS pixels.
TAP_PX = 44
#: A4 portrait (210 × 297 mm), in PDF points.
A4_PT = (595, 842)


@pytest.fixture
def contexts() -> Iterator[Callable[..., Any]]:
    """Makes browser contexts with no internet (anything but the app is refused)."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's package (`chromium`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def make(**kw: Any) -> Any:
            context = browser.new_context(**kw)
            context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
            context.set_default_timeout(60_000)
            return context

        yield make
        browser.close()


def _phone(contexts: Callable[..., Any]) -> Any:
    context = contexts(viewport=PHONE, locale="vi-VN", is_mobile=True, has_touch=True)
    return context.new_page()


def _no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"page is {width} px wide on a {PHONE['width']} px phone"


def _small_targets(page: Any) -> list[str]:
    """Visible links, buttons and fields lower than `TAP_PX`."""
    return page.evaluate(
        """(px) => Array.from(document.querySelectorAll('a, button, input, select'))
          .filter(e => e.offsetParent !== null && e.type !== 'hidden')
          .filter(e => e.getBoundingClientRect().height < px)
          .map(e => e.outerHTML.slice(0, 80))""",
        TAP_PX,
    )


def test_seller_page_on_a_phone_in_vietnamese(
    contexts: Any,
    api: Any,
    covered: Any,
    shots: Path,
) -> None:
    page = _phone(contexts)
    page.goto(api.base + "/records/sellers/SEL-1")
    assert page.locator("html").get_attribute("lang") == "vi"
    verdict = page.inner_text("#verdict")
    assert "Lý do" in verdict and "Live 720p" in verdict and "hd_live" not in verdict
    fields = page.inner_text("#fields")
    assert "Bản Nà Khum" in fields and re.search(r"\d+\.\d{5}", fields)
    _no_horizontal_scroll(page)
    assert _small_targets(page) == []
    page.screenshot(path=str(shots / "phone-01-seller-vi.png"), full_page=True)
    page.goto(api.base + "/")
    _no_horizontal_scroll(page)
    page.screenshot(path=str(shots / "phone-02-dashboard-vi.png"), full_page=True)


def test_event_tool_on_a_phone_answers_an_infeasible_request(
    contexts: Any,
    api: Any,
    covered: Any,
    shots: Path,
) -> None:
    page = _phone(contexts)
    page.goto(api.base + "/events")
    page.fill("input[name=streams]", "400")
    page.select_option("select[name=quality]", "fullhd_live")
    page.click("#event-form button[type=submit]")
    page.locator("#event-alternatives").wait_for()
    answer = page.inner_text("#event-alternatives")
    assert "Không nơi nào đáp ứng được" in answer
    assert re.search(r"Tối đa \d+ luồng Live 1080p, tại Bình Lư \(03390\)", answer), answer
    assert "Không nơi nào phát được 400 luồng" in answer
    assert page.locator("#event-places li.card").count() == 2
    _no_horizontal_scroll(page)
    assert _small_targets(page) == []
    page.screenshot(path=str(shots / "phone-03-event-infeasible-vi.png"), full_page=True)


def test_commune_sheet_prints_on_one_a4_page(
    contexts: Any,
    api: Any,
    covered: Any,
    shots: Path,
) -> None:
    page = contexts(viewport={"width": 1000, "height": 1400}).new_page()
    page.goto(api.base + "/communes/03390/sheet")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("#sheet-map svg image").count() >= 1
    assert "Lò Thị Mai" in page.inner_text("#sheet-sellers")
    page.screenshot(path=str(shots / "sheet-01-screen-vi.png"), full_page=True)
    pdf = page.pdf(format="A4", print_background=True)
    (shots / "sheet-03390-vi.pdf").write_bytes(pdf)
    pages = re.findall(rb"/Type\s*/Page(?![a-z])", pdf)
    assert len(pages) == 1, f"{len(pages)} pages"
    size = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert size and abs(float(size[1]) - A4_PT[0]) < 2 and abs(float(size[2]) - A4_PT[1]) < 2
    page.emulate_media(media="print")
    page.screenshot(path=str(shots / "sheet-02-print-vi.png"), full_page=True)


def test_map_offline_has_the_relief_and_a_metric_scale(
    contexts: Any,
    api: Any,
    covered: Any,
    shots: Path,
) -> None:
    page = contexts(viewport={"width": 1280, "height": 900}, locale="en-US").new_page()
    page.goto(api.base + "/map")
    page.wait_for_function("window.registryMapReady === true")
    relief = page.locator("img.leaflet-image-layer[src^='data:image/png']")
    assert relief.count() >= 2  # the relief and the coverage
    assert page.evaluate(
        "Array.from(document.querySelectorAll('img.leaflet-image-layer'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    scale = page.locator(".leaflet-control-scale-line")
    assert scale.count() == 1 and re.fullmatch(r"\d+ k?m", scale.inner_text().strip())
    control = page.locator(".leaflet-control-layers")
    assert control.locator("label", has_text="Relief (offline)").locator("input").is_checked()
    assert not control.locator("label", has_text="OpenStreetMap").locator("input").is_checked()
    assert page.locator(".commune-label", has_text="Bình Lư").count() == 1
    assert page.locator("img.leaflet-tile").count() == 0  # no tiles asked for
    page.screenshot(path=str(shots / "map-01-offline-relief-metric-scale.png"))


def test_field_pack_opens_from_a_file_with_no_network(
    contexts: Any,
    api: Any,
    covered: Any,
    runner: Any,
    tmp_path: Path,
    shots: Path,
) -> None:
    result = runner.invoke(args=["fieldpack", "03390", str(tmp_path)])
    assert result.exit_code == 0, result.output
    pack = tmp_path / "field-pack-03390-vi.html"
    context = contexts(viewport=PHONE, locale="vi-VN", is_mobile=True, has_touch=True)
    asked: list[str] = []
    context.route(
        re.compile(r"^(?!file:|data:|about:)"),
        lambda route: (asked.append(route.request.url), route.abort()),
    )
    context.set_offline(True)
    page = context.new_page()
    page.goto(pack.as_uri())
    assert "Lò Thị Mai" in page.inner_text("#sheet-sellers")
    frame = page.frame_locator("#pack-map")
    frame.locator(".leaflet-control-scale-line").wait_for()
    frame.locator("path.leaflet-interactive").first.wait_for()
    assert frame.locator("img.leaflet-image-layer").count() >= 2
    page.locator("#pack-map").scroll_into_view_if_needed()
    _no_horizontal_scroll(page)
    page.screenshot(path=str(shots / "pack-01-file-offline-vi.png"), full_page=True)
    assert asked == []  # every asset is inside the file
