"""Languages of the pages: Vietnamese and English with Flask-Babel.

The language comes from ``?lang=`` (remembered in a cookie), then that cookie, then the
browser's ``Accept-Language``; numbers are formatted by the chosen locale.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask, Response, g, request
from flask_babel import Babel, format_datetime, format_decimal, format_percent, get_locale

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
COOKIE = "lang"
#: Dates and times are shown in Vietnam's time zone (UTC+7), where the registry's places are.
TIMEZONE = "Asia/Ho_Chi_Minh"
#: A year, in seconds: how long the language choice is remembered.
COOKIE_MAX_AGE_S = 365 * 24 * 3600


def select_locale() -> str:
    """``?lang=``, then the ``lang`` cookie, then Accept-Language, then Vietnamese."""
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        g.set_language = chosen
        return chosen
    cookie = request.cookies.get(COOKIE)
    if cookie in LANGUAGES:
        return cookie
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def number(value: Any, digits: int = 0) -> str:
    """A number in the page's locale ("1.234,5" in Vietnamese, "1,234.5" in English)."""
    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern)


def percent(value: Any, digits: int = 1) -> str:
    """A share (0…1) as a percentage in the page's locale."""
    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return format_percent(value, format=pattern)


#: Decimals of a longitude or latitude on pages: 5 is about 1 m on the ground.
COORD_DECIMALS = 5


def coordinate(value: Any) -> str:
    """A longitude or latitude with `COORD_DECIMALS` decimals and a decimal point in every
    language (the form GPS apps accept)."""
    return "—" if value is None else f"{float(value):.{COORD_DECIMALS}f}"


def when(value: Any) -> str:
    """A date and time (a datetime or ISO 8601 text) in the page's locale, e.g.
    "1/12/2026 08:30" in Vietnamese; text that is not a date is shown as it is."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return str(format_datetime(value, "short"))


def init_app(app: Flask) -> None:
    Babel(
        app,
        locale_selector=select_locale,
        default_locale=DEFAULT_LANGUAGE,
        default_timezone=TIMEZONE,
        default_translation_directories="translations",
    )
    app.jinja_env.filters["num"] = number
    app.jinja_env.filters["pct"] = percent
    app.jinja_env.filters["coord"] = coordinate
    app.jinja_env.filters["when"] = when

    @app.context_processor
    def _languages() -> dict[str, Any]:
        return {"current_language": str(get_locale() or DEFAULT_LANGUAGE), "languages": LANGUAGES}

    @app.after_request
    def _remember_language(response: Response) -> Response:
        chosen = g.get("set_language")
        if chosen:
            response.set_cookie(COOKIE, chosen, max_age=COOKIE_MAX_AGE_S, samesite="Lax")
        return response
