"""Reasons rendered in the reader's language, the offline base map, the commune sheet and the
field pack (through the app's test client; the browser checks are in test_browser_pages.py)."""

from __future__ import annotations

import html
import re
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from registry import maps
from registry.readiness import REASON_CODES
from registry.web import reasons

#: The pages a Vietnamese reader opens that show reasons (seller, village, site, events,
#: dashboard), on the sample registry.
VI_PAGES = (
    "/records/sellers/SEL-1?lang=vi",
    "/records/villages/V-BL-1?lang=vi",
    "/records/sites/VT-BL-01?lang=vi",
    "/events?streams=3&quality=sd_live&candidates=villages&lang=vi",
    "/events?streams=400&quality=fullhd_live&lang=vi",
    "/?lang=vi",
    "/communes/03390/sheet",
)


@pytest.fixture
def covered(loaded: Any, dem: Path, runner: Any) -> Any:
    result = runner.invoke(args=["coverage", "compute"])
    assert result.exit_code == 0, result.output
    return loaded


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_reason_code_has_vietnamese_and_english_with_its_parameters() -> None:
    assert set(reasons.CATALOGUE) == set(REASON_CODES)
    for code, params in REASON_CODES.items():
        for lang in ("vi", "en"):
            assert _fields(reasons.CATALOGUE[code][lang]) == set(params), (code, lang)
        assert reasons.CATALOGUE[code]["vi"] != reasons.CATALOGUE[code]["en"], code


def test_reasons_render_labels_and_numbers_in_the_language() -> None:
    weak = {
        "code": "weak_uplink",
        "params": {"technology": "4G", "sector": "S-1", "rsrp_dbm": -98, "radio_mbps": 1234.5},
    }
    assert reasons.explain(weak, "en") == (
        "Weak uplink: 4G sector S-1 at -98 dBm RSRP gives 1,234.5 Mbps."
    )
    assert reasons.explain(weak, "vi") == (
        "Đường lên yếu: trạm phát 4G S-1 với RSRP -98 dBm chỉ cho 1.234,5 Mbps."
    )
    best = {
        "code": "event_best_streams",
        "params": {"streams": 6, "quality": "hd_live", "place": "V-1"},
    }
    assert reasons.explain(best, "en", {"V-1": "Bản X"}) == (
        "At most 6 streams of Live 720p, at Bản X (V-1)."
    )
    possible = {
        "code": "event_best_quality",
        "params": {"streams": 20, "quality": "basic_live", "place": "V-2"},
    }
    assert reasons.explain(possible, "vi", {"V-2": "Bản Y"}) == (
        "Có thể 20 luồng ở mức Live 360p, tại Bản Y (V-2)."
    )
    shares = {"code": "claims_agree", "params": {"centres_share": 1.0, "villages_share": 0.9912}}
    assert "100% trung tâm xã và 99,1% thôn bản" in reasons.explain(shares, "vi")
    row = reasons.flat([{"code": "A", "reason": weak}])[0]
    assert row["reason_code"] == "weak_uplink" and '"radio_mbps": 1234.5' in row["reason_params"]


def _english_fragments() -> set[str]:
    """The fixed words of every English sentence of the catalogue (pieces between parameters,
    at least two words long)."""
    out = set()
    for entry in reasons.CATALOGUE.values():
        for literal, *_ in string.Formatter().parse(entry["en"]):
            piece = literal.strip(" .;:,()→")
            if len(piece.split()) >= 2:
                out.add(piece)
    return out


def test_vietnamese_pages_contain_no_english_reason(client: Any, covered: Any) -> None:
    fragments = _english_fragments()
    assert "Mbps per stream vs" in fragments and "sellers within" in fragments
    seen_reasons = 0
    for path in VI_PAGES:
        response = client.get(path, headers={"Accept-Language": "en-US,en;q=0.9"})
        assert response.status_code == 200, path
        text = html.unescape(response.get_data(as_text=True))
        assert not [f for f in fragments if f in text], path
        seen_reasons += sum(
            vi.split("{")[0] in text for vi in (e["vi"] for e in reasons.CATALOGUE.values())
        )
    assert seen_reasons >= 5  # the pages do show reasons (in Vietnamese)


def test_labels_names_and_coordinates_on_the_seller_page(client: Any, covered: Any) -> None:
    text = html.unescape(client.get("/records/sellers/SEL-1?lang=vi").get_data(as_text=True))
    assert "Live 720p" in text and ">hd_live<" not in text  # the wanted class by its label
    assert re.search(r">Bản Nà Khum</a> <small class=\"muted code\">V-BL-1</small>", text)
    assert re.search(r"<td>\d+\.\d{5}</td>", text)  # lon/lat: 5 decimals


def test_dates_in_the_language_and_local_time(client: Any, covered: Any) -> None:
    vi = html.unescape(client.get("/records/events?lang=vi").get_data(as_text=True))
    en = html.unescape(client.get("/records/events?lang=en").get_data(as_text=True))
    assert "08:00 4/11/25" in vi  # 2025-11-04T08:00+07:00
    assert re.search(r"11/4/25, 8:00\s?AM", en)


def test_the_event_tool_says_what_is_possible(client: Any, covered: Any) -> None:
    text = html.unescape(
        client.get("/events?streams=400&quality=fullhd_live&lang=vi").get_data(as_text=True)
    )
    assert 'id="event-alternatives"' in text
    assert re.search(r"Tối đa \d+ luồng Live 1080p, tại [^<]+\(", text)
    assert "Không nơi nào phát được 400 luồng, kể cả ở mức thấp nhất Live 360p." in text
    assert "không đáp ứng được" in text


def test_hillshade_lights_slopes_facing_the_sun() -> None:
    rows, cols = np.mgrid[0:5, 0:5].astype(float)
    rising_south_east = (rows + cols) * 30.0  # faces north-west, towards the sun
    assert maps.hillshade(rising_south_east, 30.0, 30.0)[2, 2] > 0.95
    assert maps.hillshade(-rising_south_east, 30.0, 30.0)[2, 2] == 0.0
    assert maps.hillshade(np.zeros((3, 3)), 30.0, 30.0)[1, 1] == pytest.approx(np.sin(np.pi / 4))


def test_hillshade_image_is_cached_per_dem_version(app: Any, dem: Path, tmp_path: Path) -> None:
    cache = tmp_path / "shade"
    first = maps.hillshade_image(dem, cache, max_px=256)
    [png] = cache.glob("*.png")
    assert max(first.width, first.height) == 256 and first.png == png.read_bytes()
    with rasterio.open(png) as image:
        grey, alpha = image.read()
    assert alpha.max() == 255 and grey[alpha > 0].std() > 5  # relief, not a flat grey
    assert maps.hillshade_image(dem, cache, max_px=256).png == first.png
    assert len(list(cache.glob("*.png"))) == 1  # the cached file is reused
    with rasterio.open(dem, "r+") as src:
        src.write(src.read(1) * 2, 1)
    maps.hillshade_image(dem, cache, max_px=256)
    assert len(list(cache.glob("*.png"))) == 2  # a new DEM version: a new image


def test_map_page_has_the_offline_relief_and_a_metric_scale(client: Any, covered: Any) -> None:
    page = client.get("/map").get_data(as_text=True)
    assert "data:image/png;base64," in page and "Relief (offline)" in page
    assert "imperial: false" in page and "commune-label" in page
    assert '"OpenStreetMap (online)"' in page or "OpenStreetMap (online)" in page


def test_commune_sheet_is_vietnamese_by_default(client: Any, covered: Any) -> None:
    response = client.get("/communes/03390/sheet", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    text = html.unescape(response.get_data(as_text=True))
    assert '<html lang="vi">' in text and "Bình Lư" in text
    assert "Phiếu khả năng livestream" in text and 'id="sheet-map"' in text
    assert "<svg" in text and 'class="scale-bar"' in text and "SEL-1" in text
    assert "Lò Thị Mai" in text and 'id="sheet-events"' in text
    english = client.get("/communes/03390/sheet?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Livestream readiness sheet" in english
    assert client.get("/communes/NOPE/sheet").status_code == 404
    commune = client.get("/records/communes/03390?lang=vi").get_data(as_text=True)
    assert 'id="sheet-link"' in commune and 'id="fieldpack-link"' in commune


def test_field_pack_is_self_contained(
    client: Any, covered: Any, runner: Any, tmp_path: Path
) -> None:
    response = client.get("/communes/03390/fieldpack")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    result = runner.invoke(args=["fieldpack", "--all", str(tmp_path / "packs")])
    assert result.exit_code == 0, result.output
    packs = sorted(p.name for p in (tmp_path / "packs").iterdir())
    assert packs == ["field-pack-03390-vi.html", "field-pack-03408-vi.html"]
    text = (tmp_path / "packs" / "field-pack-03390-vi.html").read_text("utf-8")
    inner = html.unescape(re.search(r'srcdoc="([^"]*)"', text).group(1))
    for doc in (text, inner):
        assert not re.search(r'<(script|img|link|iframe)[^>]+(src|href)="https?://', doc)
    assert "L.map(" in inner and "leaflet" in inner.lower() and "imperial: false" in inner
    assert runner.invoke(args=["fieldpack", str(tmp_path)]).exit_code != 0  # neither code nor --all
