"""The commune sheet: what program staff take to a commune — its KPI line, each seller's
verdict with its reason and better spot, and the best event places among its villages.

The printed sheet (``/communes/<code>/sheet``) and the offline field pack show the same
`CommuneSheet`; rendering (and the reasons' sentences) is the web layer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.errors import NotFoundError
from registry.services.readiness import ReadinessInputs, kpi_table, rank_places, seller_rows

#: The event the sheet plans for: a market-day session, five sellers live at once in 720p
#: (planning assumption of the sheet, as the event tool's default quality).
SHEET_EVENT_STREAMS = 5
SHEET_EVENT_QUALITY = "hd_live"
#: How far sellers would travel to the event (the event tool's default).
SHEET_EVENT_TRAVEL_M = 10_000.0
#: Event places listed on the sheet.
SHEET_EVENT_PLACES = 3


@dataclass(frozen=True)
class CommuneSheet:
    """One commune's sheet: records as flat rows (lon/lat), reasons as ``{"code", "params"}``."""

    code: str
    name: str
    population: int
    outline: Any  # shapely (Multi)Polygon, lon/lat
    kpis: dict[str, Any]
    sellers: list[dict[str, Any]]  # short of their wanted class first, then by name
    events: list[dict[str, Any]]
    event_alternatives: list[dict[str, Any]]
    village_names: dict[str, str]
    event_streams: int = SHEET_EVENT_STREAMS
    event_quality: str = SHEET_EVENT_QUALITY


def commune_sheet(inputs: ReadinessInputs, code: str) -> CommuneSheet:
    """The sheet of commune ``code`` (NotFoundError when there is none)."""
    commune = next((c for c in inputs.communes if c.code == code), None)
    if commune is None:
        raise NotFoundError(f"no communes record with code {code!r}")
    mine = {s for s, c in inputs.seller_commune.items() if c == code}
    sellers = sorted(
        seller_rows(inputs, only=mine), key=lambda r: (r["meets_wanted"], r["name"], r["code"])
    )
    kpis = next(r for r in kpi_table(inputs) if r["commune_code"] == code)
    villages = [v for v in inputs.villages if v.commune_code == code]
    ranked = rank_places(
        inputs,
        [inputs.place(v.code, v.geom.x, v.geom.y) for v in villages],
        {v.code: v.name for v in villages},
        streams=SHEET_EVENT_STREAMS,
        quality=SHEET_EVENT_QUALITY,
        travel_radius_m=SHEET_EVENT_TRAVEL_M,
    )
    return CommuneSheet(
        code=commune.code,
        name=commune.name,
        population=commune.population,
        outline=commune.geom,
        kpis=kpis,
        sellers=sellers,
        events=ranked.rows[:SHEET_EVENT_PLACES],
        event_alternatives=ranked.alternatives,
        village_names=ranked.names,
    )
