"""The reason catalogue: each reason code of ``registry.readiness`` as a sentence in
Vietnamese and English, with its parameters formatted for the language.

The core gives a code and parameters (``Reason``); pages, the API and CSV call `explain` with
the reader's language. Parameters are formatted by their name: ``*_mbps`` and ``*_km`` with one
decimal, ``*_m`` and ``*_dbm`` as whole numbers, ``*share`` as a percentage, ``margin`` as a
signed percentage, ``quality``/``wanted`` as the class's label, ``place`` as the place's name
(with its code), the rest (codes, counts) as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from flask import request
from flask_babel import get_locale

from registry.web.i18n import DEFAULT_LANGUAGE, LANGUAGES

#: Live classes by the name people know them by (the same in both languages).
LIVE_LABELS = {
    "fullhd_live": "Live 1080p",
    "hd_live": "Live 720p",
    "sd_live": "Live 480p",
    "basic_live": "Live 360p",
}
#: Words a parameter may take, per language.
WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "active": "đang hoạt động",
        "planned": "mới quy hoạch",
        "down": "đang hỏng",
        "fibre": "cáp quang",
        "microwave": "viba",
        "satellite": "vệ tinh",
        "backhaul": "đường truyền về trạm",
        "cell_uplink": "đường lên của ô phủ sóng",
    },
    "en": {
        "active": "active",
        "planned": "planned",
        "down": "down",
        "fibre": "fibre",
        "microwave": "microwave",
        "satellite": "satellite",
        "backhaul": "backhaul",
        "cell_uplink": "cell uplink",
    },
}

CATALOGUE: dict[str, dict[str, str]] = {
    "meets": {
        "vi": "Đạt {wanted}: {usable_mbps} Mbps qua trạm phát {technology} {sector}.",
        "en": "Meets {wanted}: {usable_mbps} Mbps via {technology} sector {sector}.",
    },
    "no_5g_phone_only_5g": {
        "vi": "Chưa có điện thoại 5G: ở đây chỉ có sóng 5G của {sector} "
        "({radio_mbps} Mbps đường lên với điện thoại 5G).",
        "en": "No 5G phone: only 5G sector {sector} reaches here "
        "({radio_mbps} Mbps uplink with a 5G phone).",
    },
    "no_5g_phone_better": {
        "vi": "Chưa có điện thoại 5G: sóng 5G của {sector} sẽ cho {radio_5g_mbps} Mbps "
        "thay vì {radio_mbps} Mbps.",
        "en": "No 5G phone: 5G sector {sector} would give {radio_5g_mbps} Mbps "
        "instead of {radio_mbps}.",
    },
    "site_down": {
        "vi": "Trạm gần nhất {site} (cách {distance_km} km) {status}.",
        "en": "Site down: the nearest site {site} ({distance_km} km) is {status}.",
    },
    "no_site_within": {
        "vi": "Quá xa: không có trạm nào trong bán kính {radius_km} km.",
        "en": "Distance: no site within {radius_km} km.",
    },
    "distance": {
        "vi": "Quá xa: trạm gần nhất {site} cách {distance_km} km.",
        "en": "Distance: the nearest site {site} is {distance_km} km away.",
    },
    "terrain": {
        "vi": "Địa hình che khuất: một dãy núi cách {ridge_distance_m} m "
        "(cao {ridge_elevation_m} m, cao hơn đường nhìn thẳng {above_m} m) chắn trạm {site} "
        "cách {distance_km} km.",
        "en": "Terrain: a ridge {ridge_distance_m} m away ({ridge_elevation_m} m, {above_m} m "
        "above the line of sight) blocks site {site} {distance_km} km away.",
    },
    "backhaul_cut": {
        "vi": "Mất đường truyền: trạm {site} bị cắt khỏi mạng lõi (không còn tuyến cáp quang).",
        "en": "Backhaul: site {site} is cut off from the core network (no working fibre route).",
    },
    "backhaul_shared": {
        "vi": "Đường truyền hạn chế: {kind} {capacity_mbps} Mbps ở trạm {site}, {share} dành cho "
        "livestream, chia cho {streams} luồng → mỗi luồng {per_stream_mbps} Mbps.",
        "en": "Backhaul: {kind} {capacity_mbps} Mbps at site {site}, {share} for streams, "
        "shared by {streams} stream(s) → {per_stream_mbps} Mbps each.",
    },
    "cell_sharing": {
        "vi": "Dùng chung ô phủ sóng: {streams} luồng chia đường lên của {sector} → mỗi luồng "
        "{per_stream_mbps} trên {radio_mbps} Mbps.",
        "en": "Cell sharing: {streams} streams share sector {sector}'s uplink → "
        "{per_stream_mbps} of {radio_mbps} Mbps each.",
    },
    "weak_uplink": {
        "vi": "Đường lên yếu: trạm phát {technology} {sector} với RSRP {rsrp_dbm} dBm chỉ cho "
        "{radio_mbps} Mbps.",
        "en": "Weak uplink: {technology} sector {sector} at {rsrp_dbm} dBm RSRP gives "
        "{radio_mbps} Mbps.",
    },
    "event_no_signal": {
        "vi": "Không có sóng dùng được ở đây; {sellers} người bán trong vòng {travel_km} km.",
        "en": "No usable signal here; {sellers} sellers within {travel_km} km.",
    },
    "event_rate": {
        "vi": "{streams} luồng {quality} qua {technology} {sector}: mỗi luồng {per_stream_mbps} "
        "Mbps, cần {need_mbps} ({margin}, giới hạn bởi {limit}); {sellers} người bán trong "
        "vòng {travel_km} km.",
        "en": "{streams} × {quality} via {technology} sector {sector}: {per_stream_mbps} Mbps "
        "per stream vs {need_mbps} needed ({margin}, limited by {limit}); {sellers} sellers "
        "within {travel_km} km.",
    },
    "event_best_streams": {
        "vi": "Tối đa {streams} luồng {quality}, tại {place}.",
        "en": "At most {streams} streams of {quality}, at {place}.",
    },
    "event_best_quality": {
        "vi": "Có thể {streams} luồng ở mức {quality}, tại {place}.",
        "en": "{streams} streams possible at {quality}, at {place}.",
    },
    "event_none_possible": {
        "vi": "Không nơi nào phát được {streams} luồng, kể cả ở mức thấp nhất {quality}.",
        "en": "No place carries {streams} streams, even at the lowest quality, {quality}.",
    },
    "measured": {
        "vi": "Đo được {ul_rate_mbps} Mbps ngày {date} (dự báo: {predicted}); kết luận theo số đo.",
        "en": "Measured {ul_rate_mbps} Mbps on {date} (predicted: {predicted}); the verdict uses "
        "the measurement.",
    },
    "claims_agree": {
        "vi": "Dự báo khớp với số liệu của tỉnh: {centres_share} trung tâm xã và "
        "{villages_share} thôn bản có sóng.",
        "en": "The prediction agrees with the province: {centres_share} of commune centres and "
        "{villages_share} of villages have signal.",
    },
    "claims_disagree": {
        "vi": "Dự báo chưa khớp với số liệu của tỉnh: {centres_share} trung tâm xã và "
        "{villages_share} thôn bản có sóng.",
        "en": "The prediction does not fully agree with the province: {centres_share} of "
        "commune centres and {villages_share} of villages have signal.",
    },
}


def language(value: str | None = None) -> str:
    """``value`` if it is a language of the pages, else the request's (``?lang=``, cookie,
    Accept-Language), else Vietnamese."""
    if value in LANGUAGES:
        return str(value)
    if request and request.args.get("lang") in LANGUAGES:
        return str(request.args["lang"])
    locale = get_locale()
    return str(locale) if locale is not None else DEFAULT_LANGUAGE


def _format(name: str, value: Any, lang: str, names: Mapping[str, str]) -> str:
    if value is None:
        return "—"
    if name in ("quality", "wanted", "predicted"):
        return LIVE_LABELS.get(value, str(value))
    if name == "date":
        return format_date(date.fromisoformat(value), "long", locale=lang)
    if name == "place":
        return f"{names[value]} ({value})" if value in names else str(value)
    if isinstance(value, str):
        return WORDS[lang].get(value, value)
    if name == "margin":
        return ("+" if value >= 0 else "") + format_percent(value, "#,##0%", locale=lang)
    if name.endswith("share"):
        return format_percent(value, "#,##0.#%", locale=lang)
    if name.endswith(("_mbps", "_km")):
        return format_decimal(value, "#,##0.0", locale=lang)
    if isinstance(value, float):
        return format_decimal(value, "#,##0", locale=lang)
    return format_decimal(value, "#,##0", locale=lang) if isinstance(value, int) else str(value)


def explain(
    reason: Mapping[str, Any], lang: str | None = None, names: Mapping[str, str] | None = None
) -> str:
    """The sentence of ``reason`` (``{"code", "params"}``) in ``lang`` (default: the request's)."""
    lang = language(lang)
    template = CATALOGUE[reason["code"]][lang]
    params = reason.get("params") or {}
    return template.format(**{k: _format(k, v, lang, names or {}) for k, v in params.items()})


def explained(
    rows: list[dict[str, Any]],
    lang: str | None = None,
    names: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Rows with a ``reason`` gain ``explanation``: its sentence in ``lang``."""
    lang = language(lang)
    return [
        {**row, "explanation": explain(row["reason"], lang, names)} if "reason" in row else row
        for row in rows
    ]


def flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for CSV: the ``reason`` object as ``reason_code`` and ``reason_params`` (JSON)."""
    out = []
    for row in rows:
        if "reason" in row:
            row = dict(row)
            why = row.pop("reason")
            row["reason_code"] = why["code"]
            row["reason_params"] = json.dumps(why["params"], ensure_ascii=False, sort_keys=True)
        out.append(row)
    return out
