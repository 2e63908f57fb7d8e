"""Livestream readiness: a verdict and its reasons for every seller, the nearest better spot,
event locations and coverage KPIs.

Pure functions over coverage grids (one per technology), backhaul verdicts and plain records;
no Flask, no database. A seller uses the better of the technologies their phone supports. The
usable uplink of one stream is the smaller of

- the radio rate of its cell, shared when several streams run at once in that cell
  (``ReadinessParams.concurrent_streams_per_cell``), and
- the site's backhaul share for live streams divided among the site's concurrent streams,

and is zero when the serving site is down or cut off from the core network. Every verdict,
village and event place also gets the probability that its wanted class is met and a
confidence level (`registry.confidence`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from affine import Affine

from registry.backhaul import SiteBackhaul
from registry.confidence import (
    LEVELS,
    Confidence,
    ConfidenceParams,
    SectorUplink,
    confidence,
    terrain_sigma_db,
)
from registry.errors import ValidationError
from registry.radio.coverage import NO_SERVER, CoverageResult
from registry.radio.linkbudget import (
    LIVE_CLASSES,
    SERVICE_CLASSES,
    RadioParams,
    ServiceClassThresholds,
    UplinkParams,
    service_class_codes,
)
from registry.terrain import Dem, apply_transform, elevation_at, terrain_profile


@dataclass(frozen=True)
class ReadinessParams:
    """Planning assumptions of the readiness analysis (overridable)."""

    concurrent_streams_per_cell: int = 1  # sellers live at once in one cell (busy hour)
    backhaul_share_for_streams: float = 0.5  # share of a site's backhaul left for live uploads
    walking_radius_m: float = 1_500.0  # how far a seller would walk to a better spot
    search_radius_m: float = 20_000.0  # nearest-site search for reasons (= coverage radius)
    rsrp_floor_dbm: float = -120.0  # usable signal; below it a phone has no service (planning)
    radio: RadioParams = field(default_factory=RadioParams)
    uplink: UplinkParams = field(default_factory=UplinkParams)
    thresholds: ServiceClassThresholds = field(default_factory=ServiceClassThresholds)
    confidence: ConfidenceParams = field(default_factory=ConfidenceParams)

    def required_mbps(self, service_class: str) -> float:
        """Uplink rate a live service class needs (its threshold)."""
        if service_class not in LIVE_CLASSES:
            raise ValidationError(
                "unknown quality",
                details=[
                    {"field": "quality", "reason": f"must be one of {', '.join(LIVE_CLASSES)}"}
                ],
            )
        return float(getattr(self.thresholds, f"{service_class}_mbps"))


@dataclass(frozen=True)
class TechGrid:
    """One technology's coverage on the analysis grid."""

    technology: str
    transform: Affine
    best_server: np.ndarray  # int32 sector index, NO_SERVER where none
    site_codes: tuple[str, ...]  # by sector index
    sector_codes: tuple[str, ...]
    rsrp_dbm: np.ndarray
    ul_rate_mbps: np.ndarray

    @classmethod
    def from_result(cls, technology: str, result: CoverageResult) -> TechGrid:
        return cls(
            technology,
            result.transform,
            result.best_server,
            tuple(s.site_code for s in result.sectors),
            tuple(s.sector_code for s in result.sectors),
            result.rsrp_dbm,
            result.ul_rate_mbps,
        )

    def cell(self, x_m: float, y_m: float) -> tuple[int, int] | None:
        col, row = ~self.transform @ (x_m, y_m)
        r, c = math.floor(row), math.floor(col)
        rows, cols = self.best_server.shape
        return (r, c) if 0 <= r < rows and 0 <= c < cols else None


@dataclass(frozen=True)
class SiteInfo:
    """What readiness needs to know of a site (coordinates in the DEM CRS)."""

    code: str
    x_m: float
    y_m: float
    antenna_elevation_m: float  # the site's highest antenna: ground + height_m, m above sea
    status: str
    technologies: frozenset[str]
    #: Each sector's antenna (ground + its height_m, m above sea level), as coverage uses it.
    sector_antenna_elevation_m: Mapping[str, float] = field(default_factory=dict)

    def antenna_elevation(self, sector_code: str | None = None) -> float:
        """The antenna of ``sector_code`` (the serving one); the highest when none is known."""
        return self.sector_antenna_elevation_m.get(sector_code or "", self.antenna_elevation_m)


@dataclass(frozen=True)
class Place:
    """A seller, village or event candidate (coordinates in the DEM CRS)."""

    code: str
    x_m: float
    y_m: float
    phone_tech: str = "5G"
    wanted_class: str = "hd_live"


@dataclass(frozen=True)
class Link:
    """The radio side of one place: best usable technology and its serving cell."""

    technology: str | None = None
    site_code: str | None = None
    sector_code: str | None = None
    rsrp_dbm: float | None = None
    radio_mbps: float = 0.0


@dataclass(frozen=True)
class Reason:
    """Why: a code from ``REASON_CODES`` and its parameters (numbers, record codes, class
    names), rendered into a sentence in the reader's language by the web layer."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "params": dict(self.params)}


#: Every reason code the analysis gives, with the parameters each carries. Units are in the
#: parameter names; ``quality``/``wanted`` are service-class names, ``site``/``sector`` codes.
REASON_CODES: dict[str, tuple[str, ...]] = {
    "meets": ("wanted", "usable_mbps", "technology", "sector"),
    "no_5g_phone_only_5g": ("sector", "radio_mbps"),
    "no_5g_phone_better": ("sector", "radio_5g_mbps", "radio_mbps"),
    "site_down": ("site", "distance_km", "status"),
    "no_site_within": ("radius_km",),
    "distance": ("site", "distance_km"),
    "terrain": ("ridge_distance_m", "ridge_elevation_m", "above_m", "site", "distance_km"),
    "backhaul_cut": ("site",),  # an active site with no working fibre route to the core
    "backhaul_shared": ("kind", "capacity_mbps", "site", "share", "streams", "per_stream_mbps"),
    "cell_sharing": ("streams", "sector", "per_stream_mbps", "radio_mbps"),
    "weak_uplink": ("technology", "sector", "rsrp_dbm", "radio_mbps"),
    "event_no_signal": ("sellers", "travel_km"),
    "event_rate": (
        "streams",
        "quality",
        "technology",
        "sector",
        "per_stream_mbps",
        "need_mbps",
        "margin",
        "limit",
        "sellers",
        "travel_km",
    ),
    "event_best_streams": ("streams", "quality", "place"),
    "event_best_quality": ("streams", "quality", "place"),
    "event_none_possible": ("streams", "quality"),
    "measured": ("ul_rate_mbps", "date", "predicted"),  # a field measurement overrules
    "claims_agree": ("centres_share", "villages_share"),
    "claims_disagree": ("centres_share", "villages_share"),
}


def reason(code: str, **params: Any) -> Reason:
    """A `Reason`, checked against ``REASON_CODES`` (a programming error otherwise)."""
    expected = REASON_CODES[code]
    if set(params) != set(expected):
        raise ValueError(f"reason {code}: parameters {sorted(params)} != {sorted(expected)}")
    return Reason(code, params)


@dataclass
class Verdict:
    """A seller's service class and the chain of reasons behind it."""

    code: str
    service_class: str
    wanted_class: str
    meets_wanted: bool
    limiting_factor: str
    reason: Reason
    technology: str | None
    site_code: str | None
    sector_code: str | None
    rsrp_dbm: float | None
    radio_mbps: float
    backhaul_kind: str | None
    backhaul_per_stream_mbps: float | None
    usable_mbps: float
    cell_streams: int
    site_streams: int
    better_spot: dict[str, float] | None = None
    p_meets_wanted: float | None = None  # probability the wanted class is met
    confidence: str | None = None  # likely | borderline | unlikely
    margin_db: float | None = None  # median uplink SINR over what the wanted class needs
    sigma_db: float | None = None  # combined location and terrain sigma

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "reason": self.reason.to_dict()}


def _value(array: np.ndarray, cell: tuple[int, int]) -> float | None:
    v = float(array[cell])
    return v if math.isfinite(v) else None


def radio_link(place: Place, grids: Mapping[str, TechGrid], params: ReadinessParams) -> Link:
    """The best radio link the place's phone can use (by uplink rate)."""
    best = Link()
    for tech, grid in grids.items():
        if tech == "5G" and place.phone_tech != "5G":
            continue
        cell = grid.cell(place.x_m, place.y_m)
        if cell is None or grid.best_server[cell] == NO_SERVER:
            continue
        rsrp = _value(grid.rsrp_dbm, cell)
        if rsrp is None or rsrp < params.rsrp_floor_dbm:
            continue
        index = int(grid.best_server[cell])
        rate = float(grid.ul_rate_mbps[cell])
        if rate > best.radio_mbps or best.technology is None:
            best = Link(tech, grid.site_codes[index], grid.sector_codes[index], rsrp, rate)
    return best


def link_confidence(
    place: Place,
    link: Link,
    grids: Mapping[str, TechGrid],
    uplinks: Mapping[str, SectorUplink],
    params: ReadinessParams,
    *,
    need_mbps: float,
    radio_factor: float,
    backhaul_mbps: float,
) -> Confidence:
    """The confidence that ``link`` carries ``need_mbps`` at the place: ``radio_factor`` is the
    place's share of the grid's rate, ``backhaul_mbps`` its backhaul share per stream."""
    grid = grids.get(link.technology) if link.technology else None
    sigma = (
        terrain_sigma_db(
            grid.rsrp_dbm,
            grid.transform,
            place.x_m,
            place.y_m,
            radius_m=params.confidence.terrain_radius_m,
            floor_dbm=params.rsrp_floor_dbm,
        )
        if grid is not None
        else 0.0
    )
    return confidence(
        need_mbps=need_mbps,
        radio_factor=radio_factor if link.technology else 0.0,
        backhaul_mbps=backhaul_mbps,
        rsrp_dbm=link.rsrp_dbm,
        uplink=uplinks.get(link.sector_code or ""),
        terrain_sigma=sigma,
        uplink_params=params.uplink,
        params=params.confidence,
    )


def _obstruction(
    dem: Dem, place: Place, site: SiteInfo, params: ReadinessParams, sector_code: str | None
) -> tuple[float, float, float] | None:
    """The highest terrain point above the straight line from the phone to the antenna of
    ``sector_code`` (the site's highest without one), as (distance from the place m, its height
    above the line m, its elevation m), or None."""
    profile = terrain_profile(dem, (place.x_m, place.y_m), (site.x_m, site.y_m))
    if profile.distance_m.size < 3:
        return None
    start = float(profile.elevation_m[0]) + params.radio.ue_height_m
    antenna_m = site.antenna_elevation(sector_code)
    line = start + (antenna_m - start) * profile.distance_m / profile.distance_m[-1]
    excess = (profile.effective_m - line)[1:-1]
    i = int(np.argmax(excess))
    if excess[i] <= 0:
        return None
    return (float(profile.distance_m[i + 1]), float(excess[i]), float(profile.elevation_m[i + 1]))


def _nearest_site(
    place: Place, sites: Sequence[SiteInfo], *, max_m: float, usable: Iterable[str]
) -> tuple[SiteInfo, float] | None:
    techs = set(usable)
    best = None
    for site in sites:
        if not site.technologies & techs:
            continue
        d = math.hypot(site.x_m - place.x_m, site.y_m - place.y_m)
        if d <= max_m and (best is None or d < best[1]):
            best = (site, d)
    return best


def _terrain_reason(
    dem: Dem,
    place: Place,
    site: SiteInfo,
    distance_m: float,
    params: ReadinessParams,
    sector_code: str | None = None,
) -> Reason | None:
    blocked = _obstruction(dem, place, site, params, sector_code)
    if blocked is None:
        return None
    d, above, elevation = blocked
    return reason(
        "terrain",
        ridge_distance_m=round(d),
        ridge_elevation_m=round(elevation),
        above_m=round(above),
        site=site.code,
        distance_km=round(distance_m / 1000, 1),
    )


def better_spot(
    place: Place,
    required_mbps: float,
    grids: Mapping[str, TechGrid],
    dem: Dem,
    backhaul_cap: Mapping[str, float],
    params: ReadinessParams,
) -> dict[str, float] | None:
    """The closest cell within walking distance whose usable rate reaches ``required_mbps``.

    A cell's usable rate is its radio rate capped by its serving site's backhaul share for one
    more stream (``backhaul_cap``: Mbps per stream by site; missing = unreachable).
    """
    best: tuple[float, float, float] | None = None
    for tech, grid in grids.items():
        if tech == "5G" and place.phone_tech != "5G":
            continue
        cell_m = abs(grid.transform.a)
        reach = int(params.walking_radius_m // cell_m) + 1
        centre = grid.cell(place.x_m, place.y_m)
        col0, row0 = ~grid.transform @ (place.x_m, place.y_m)
        r0, c0 = (int(row0), int(col0)) if centre is None else centre
        rows = slice(max(0, r0 - reach), max(0, r0 + reach + 1))
        cols = slice(max(0, c0 - reach), max(0, c0 + reach + 1))
        servers = grid.best_server[rows, cols]
        if servers.size == 0:
            continue
        caps = np.array([backhaul_cap.get(s, 0.0) for s in grid.site_codes] + [0.0])
        usable = np.minimum(grid.ul_rate_mbps[rows, cols], caps[servers])
        usable[grid.rsrp_dbm[rows, cols] < params.rsrp_floor_dbm] = 0.0
        rr, cc = np.nonzero(usable >= required_mbps)
        if rr.size == 0:
            continue
        xs, ys = apply_transform(grid.transform, cc + cols.start + 0.5, rr + rows.start + 0.5)
        d = np.hypot(xs - place.x_m, ys - place.y_m)
        i = int(np.argmin(d))
        if d[i] <= params.walking_radius_m and (best is None or d[i] < best[0]):
            best = (float(d[i]), float(xs[i]), float(ys[i]))
    if best is None:
        return None
    distance, x, y = best
    here, there = elevation_at(dem, [place.x_m, x], [place.y_m, y])
    bearing = math.degrees(math.atan2(x - place.x_m, y - place.y_m)) % 360
    return {
        "x_m": x,
        "y_m": y,
        "distance_m": round(distance, 1),
        "bearing_deg": round(bearing, 1),
        "climb_m": round(float(there - here), 1),
    }


def _explain_no_signal(
    place: Place,
    grids: Mapping[str, TechGrid],
    dem: Dem,
    sites: Sequence[SiteInfo],
    params: ReadinessParams,
    cut_off: Collection[str] = (),
) -> tuple[str, Reason]:
    """Why a place has no signal; ``cut_off``: sites with no backhaul route, which coverage
    leaves silent (a seller beside one is cut off, not too far)."""
    if place.phone_tech != "5G" and "5G" in grids:
        five = radio_link(
            Place(place.code, place.x_m, place.y_m, "5G"), {"5G": grids["5G"]}, params
        )
        if five.technology:
            return "phone", reason(
                "no_5g_phone_only_5g",
                sector=five.sector_code,
                radio_mbps=round(five.radio_mbps, 1),
            )
    usable = ["4G", "5G"] if place.phone_tech == "5G" else ["4G"]
    down = _nearest_site(
        place,
        [s for s in sites if s.status != "active"],
        max_m=params.search_radius_m,
        usable=usable,
    )
    nearest = _nearest_site(
        place,
        [s for s in sites if s.status == "active"],
        max_m=params.search_radius_m,
        usable=usable,
    )
    if down and (nearest is None or down[1] < nearest[1]):
        site, d = down
        return "site down", reason(
            "site_down", site=site.code, distance_km=round(d / 1000, 1), status=site.status
        )
    if nearest is None:
        return "distance", reason("no_site_within", radius_km=params.search_radius_m / 1000)
    site, d = nearest
    if site.code in cut_off:
        return "backhaul", reason("backhaul_cut", site=site.code)
    blocked = _terrain_reason(dem, place, site, d, params)
    if blocked:
        return "terrain", blocked
    return "distance", reason("distance", site=site.code, distance_km=round(d / 1000, 1))


def seller_verdicts(
    places: Sequence[Place],
    grids: Mapping[str, TechGrid],
    dem: Dem,
    sites: Sequence[SiteInfo],
    backhaul: Mapping[str, SiteBackhaul],
    params: ReadinessParams | None = None,
    *,
    only: Collection[str] | None = None,
    uplinks: Mapping[str, SectorUplink] | None = None,
) -> list[Verdict]:
    """A verdict with reasons (and a better spot when short) for every seller, or only for
    the sellers whose codes are in ``only`` (the others still count as streams sharing cells
    and backhaul); its confidence uses ``uplinks`` (sector code → constants,
    `registry.confidence.sector_uplinks`; a sector missing there reads borderline)."""
    p = params or ReadinessParams()
    links = [radio_link(place, grids, p) for place in places]
    in_cell = Counter(link.sector_code for link in links if link.sector_code)
    cell_streams = {s: min(n, p.concurrent_streams_per_cell) for s, n in in_cell.items()}
    sector_site = {link.sector_code: link.site_code for link in links if link.sector_code}
    site_streams: Counter[str] = Counter()
    for sector, n in cell_streams.items():
        site = sector_site[sector]
        if site is not None:  # a served link has both codes
            site_streams[site] += n
    by_code = {s.code: s for s in sites}
    one_more = {
        code: b.capacity_mbps * p.backhaul_share_for_streams / (site_streams[code] + 1)
        for code, b in backhaul.items()
        if b.reachable
    }
    cut_off = {code for code, b in backhaul.items() if not b.reachable}
    out = []
    for place, link in zip(places, links, strict=True):
        if only is not None and place.code not in only:
            continue
        wanted = p.required_mbps(place.wanted_class)
        n_cell = cell_streams.get(link.sector_code, 1) if link.sector_code else 0
        n_site = site_streams.get(link.site_code, 0) if link.site_code else 0
        b = backhaul.get(link.site_code) if link.site_code else None
        radio_share = min(link.radio_mbps, link.radio_mbps / p.uplink.prb_share / max(n_cell, 1))
        per_stream_bh = (
            b.capacity_mbps * p.backhaul_share_for_streams / max(n_site, 1)
            if b and b.reachable
            else 0.0
        )
        usable = min(radio_share, per_stream_bh) if link.technology else 0.0
        code = int(service_class_codes([usable], p.thresholds)[0])
        meets = usable >= wanted
        text: Reason
        if link.technology is None:
            factor, text = _explain_no_signal(place, grids, dem, sites, p, cut_off)
        elif b is None or not b.reachable:
            factor = "backhaul"
            text = reason("backhaul_cut", site=link.site_code)
        elif meets:
            factor = "none"
            text = reason(
                "meets",
                wanted=place.wanted_class,
                usable_mbps=round(usable, 1),
                technology=link.technology,
                sector=link.sector_code,
            )
        elif per_stream_bh < radio_share:
            factor = "backhaul"
            text = reason(
                "backhaul_shared",
                kind=b.kind,
                capacity_mbps=b.capacity_mbps,
                site=link.site_code,
                share=p.backhaul_share_for_streams,
                streams=n_site,
                per_stream_mbps=round(per_stream_bh, 1),
            )
        elif radio_share < link.radio_mbps:
            factor = "cell sharing"
            text = reason(
                "cell_sharing",
                streams=n_cell,
                sector=link.sector_code,
                per_stream_mbps=round(radio_share, 1),
                radio_mbps=round(link.radio_mbps, 1),
            )
        else:
            factor, text = _explain_weak(place, link, grids, dem, by_code, p)
        spot = None if meets else better_spot(place, wanted, grids, dem, one_more, p)
        sure = link_confidence(
            place,
            link,
            grids,
            uplinks or {},
            p,
            need_mbps=wanted,
            radio_factor=min(1.0, 1.0 / (p.uplink.prb_share * max(n_cell, 1))),
            backhaul_mbps=per_stream_bh,
        )
        out.append(
            Verdict(
                code=place.code,
                service_class=SERVICE_CLASSES[code],
                wanted_class=place.wanted_class,
                meets_wanted=meets,
                limiting_factor=factor,
                reason=text,
                technology=link.technology,
                site_code=link.site_code,
                sector_code=link.sector_code,
                rsrp_dbm=None if link.rsrp_dbm is None else round(link.rsrp_dbm, 1),
                radio_mbps=round(link.radio_mbps, 2),
                backhaul_kind=b.kind if b else None,
                backhaul_per_stream_mbps=round(per_stream_bh, 2) if b else None,
                usable_mbps=round(usable, 2),
                cell_streams=n_cell,
                site_streams=n_site,
                better_spot=spot,
                p_meets_wanted=sure.p_meets_wanted,
                confidence=sure.confidence,
                margin_db=sure.margin_db,
                sigma_db=sure.sigma_db,
            )
        )
    return out


def _explain_weak(
    place: Place,
    link: Link,
    grids: Mapping[str, TechGrid],
    dem: Dem,
    sites: Mapping[str, SiteInfo],
    params: ReadinessParams,
) -> tuple[str, Reason]:
    """Why a served place's own uplink is short: phone, terrain or plain weak uplink."""
    if place.phone_tech != "5G" and "5G" in grids:
        five = radio_link(
            Place(place.code, place.x_m, place.y_m, "5G"), {"5G": grids["5G"]}, params
        )
        if five.radio_mbps > link.radio_mbps:
            return "phone", reason(
                "no_5g_phone_better",
                sector=five.sector_code,
                radio_5g_mbps=round(five.radio_mbps, 1),
                radio_mbps=round(link.radio_mbps, 1),
            )
    site = sites.get(link.site_code or "")
    if site is not None:
        d = math.hypot(site.x_m - place.x_m, site.y_m - place.y_m)
        blocked = _terrain_reason(dem, place, site, d, params, link.sector_code)
        if blocked:
            return "terrain", blocked
    return "weak uplink", reason(
        "weak_uplink",
        technology=link.technology,
        sector=link.sector_code,
        rsrp_dbm=None if link.rsrp_dbm is None else round(link.rsrp_dbm),
        radio_mbps=round(link.radio_mbps, 1),
    )


# ---------------------------------------------------------------- events
@dataclass
class EventOption:
    """How well one place carries an event of N simultaneous streams."""

    code: str
    rank: int
    feasible: bool
    margin: float  # usable per stream / needed - 1
    per_stream_mbps: float
    sellers_nearby: int
    technology: str | None
    site_code: str | None
    #: Streams of the asked quality the place carries at once (0: not even one).
    max_streams: int
    #: The best live class the asked number of streams gets here (None: not even the lowest).
    best_quality: str | None
    reason: Reason
    p_meets_wanted: float | None = None  # probability every stream gets the quality
    confidence: str | None = None  # likely | borderline | unlikely

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "reason": self.reason.to_dict()}


def _best_class(per_stream_mbps: float, params: ReadinessParams) -> str | None:
    """The best live class a per-stream rate reaches."""
    reached = [q for q in LIVE_CLASSES if per_stream_mbps >= params.required_mbps(q)]
    return reached[-1] if reached else None


def rank_event_places(
    candidates: Sequence[Place],
    *,
    streams: int,
    quality: str,
    grids: Mapping[str, TechGrid],
    backhaul: Mapping[str, SiteBackhaul],
    sellers: Sequence[Place],
    travel_radius_m: float,
    params: ReadinessParams | None = None,
    uplinks: Mapping[str, SectorUplink] | None = None,
) -> list[EventOption]:
    """Rank places for an event of ``streams`` simultaneous streams at ``quality``.

    A place's capacity for live uploads is the smaller of its serving cell's full-carrier
    uplink and its site's backhaul share; N streams share it equally. Feasible places come
    first, likely ones first among them (then borderline, then unlikely:
    `registry.confidence`), then the higher rate per stream, then more sellers within
    ``travel_radius_m``.
    """
    p = params or ReadinessParams()
    need = p.required_mbps(quality)
    xy = np.array([(s.x_m, s.y_m) for s in sellers]).reshape(-1, 2)
    travel_km = round(travel_radius_m / 1000, 1)
    options = []
    for place in candidates:
        link = radio_link(Place(place.code, place.x_m, place.y_m, "5G"), grids, p)
        b = backhaul.get(link.site_code) if link.site_code else None
        radio = link.radio_mbps / p.uplink.prb_share
        bh = b.capacity_mbps * p.backhaul_share_for_streams if b and b.reachable else 0.0
        capacity = min(radio, bh) if link.technology else 0.0
        per_stream = capacity / streams
        nearby = int(
            (np.hypot(xy[:, 0] - place.x_m, xy[:, 1] - place.y_m) <= travel_radius_m).sum()
        )
        margin = per_stream / need - 1.0
        sure = link_confidence(
            place,
            link,
            grids,
            uplinks or {},
            p,
            need_mbps=need,
            radio_factor=1.0 / (p.uplink.prb_share * streams),
            backhaul_mbps=bh,
        )
        if link.technology is None:
            why = reason("event_no_signal", sellers=nearby, travel_km=travel_km)
        else:
            why = reason(
                "event_rate",
                streams=streams,
                quality=quality,
                technology=link.technology,
                sector=link.sector_code,
                per_stream_mbps=round(per_stream, 1),
                need_mbps=need,
                margin=round(margin, 3),
                limit="backhaul" if bh < radio else "cell_uplink",
                sellers=nearby,
                travel_km=travel_km,
            )
        options.append(
            EventOption(
                code=place.code,
                rank=0,
                feasible=margin >= 0,
                margin=round(margin, 3),
                per_stream_mbps=round(per_stream, 2),
                sellers_nearby=nearby,
                technology=link.technology,
                site_code=link.site_code,
                max_streams=math.floor(capacity / need + 1e-9),
                best_quality=_best_class(per_stream, p),
                reason=why,
                p_meets_wanted=sure.p_meets_wanted,
                confidence=sure.confidence,
            )
        )
    order = {name: i for i, name in enumerate(LEVELS)}
    options.sort(
        key=lambda o: (
            not o.feasible,
            order.get(o.confidence or "", len(LEVELS)),
            -o.per_stream_mbps,
            -o.sellers_nearby,
            o.code,
        )
    )
    for rank, option in enumerate(options, start=1):
        option.rank = rank
    return options


def event_alternatives(
    options: Sequence[EventOption], *, streams: int, quality: str
) -> list[Reason]:
    """What is possible when no place carries ``streams`` at ``quality``: the most streams of
    that quality any place carries, and the best quality the asked streams get anywhere, or
    that no quality carries them (places by code, in ``place``); empty when some place is
    feasible."""
    if not options or any(o.feasible for o in options):
        return []
    out = []
    most = max(options, key=lambda o: (o.max_streams, o.per_stream_mbps))
    if most.max_streams > 0:
        out.append(
            reason("event_best_streams", streams=most.max_streams, quality=quality, place=most.code)
        )
    able = [o for o in options if o.best_quality is not None]
    if able:
        best = max(
            able, key=lambda o: (LIVE_CLASSES.index(o.best_quality or ""), o.per_stream_mbps)
        )
        out.append(
            reason(
                "event_best_quality", streams=streams, quality=best.best_quality, place=best.code
            )
        )
    else:
        out.append(reason("event_none_possible", streams=streams, quality=LIVE_CLASSES[0]))
    return out


# ---------------------------------------------------------------- KPIs
@dataclass(frozen=True)
class Counted:
    """A village, seller or commune centre to count in the KPIs."""

    kind: str  # "village" | "seller" | "centre"
    commune_code: str
    weight: int  # population for villages, 1 otherwise
    classes: Mapping[str, str]  # service class by "4G", "5G" and "any"
    confidence: str | None = None  # of the wanted class (villages, sellers)


def place_classes(
    place: Place,
    grids: Mapping[str, TechGrid],
    backhaul: Mapping[str, SiteBackhaul],
    params: ReadinessParams,
) -> dict[str, str]:
    """A place's service class per technology alone and with either (no stream sharing)."""
    out = {}
    for tech in (*grids, "any"):
        use = grids if tech == "any" else {tech: grids[tech]}
        link = radio_link(Place(place.code, place.x_m, place.y_m, "5G"), use, params)
        b = backhaul.get(link.site_code) if link.site_code else None
        cap = b.capacity_mbps * params.backhaul_share_for_streams if b and b.reachable else 0.0
        rate = min(link.radio_mbps, cap) if link.technology else 0.0
        out[tech] = SERVICE_CLASSES[int(service_class_codes([rate], params.thresholds)[0])]
    return out


def place_confidence(
    place: Place,
    grids: Mapping[str, TechGrid],
    backhaul: Mapping[str, SiteBackhaul],
    uplinks: Mapping[str, SectorUplink],
    params: ReadinessParams,
) -> Confidence:
    """The confidence that a place (a village) gets its wanted class from either technology
    under `place_classes`' assumptions (no stream sharing, the site's whole share)."""
    link = radio_link(Place(place.code, place.x_m, place.y_m, "5G"), grids, params)
    b = backhaul.get(link.site_code) if link.site_code else None
    return link_confidence(
        place,
        link,
        grids,
        uplinks,
        params,
        need_mbps=params.required_mbps(place.wanted_class),
        radio_factor=1.0,
        backhaul_mbps=b.capacity_mbps * params.backhaul_share_for_streams
        if b and b.reachable
        else 0.0,
    )


def coverage_kpis(
    items: Sequence[Counted], commune_names: Mapping[str, str], *, total_name: str
) -> list[dict[str, Any]]:
    """Shares of population, villages and sellers per service class, per commune and for the
    whole (first row, named ``total_name``: a province or all of them), for 4G alone, 5G
    alone and either; plus the share with any signal, and the number of villages and sellers
    whose wanted class is likely, borderline and unlikely."""
    groups: dict[str, list[Counted]] = {"": list(items)}
    for item in items:
        groups.setdefault(item.commune_code, []).append(item)
    rows = []
    for code in ["", *sorted(c for c in groups if c)]:
        members = groups[code]
        row: dict[str, Any] = {
            "commune_code": code or "province",
            "commune": commune_names.get(code, total_name),
        }
        for kind, label in (
            ("village", "population"),
            ("village", "villages"),
            ("seller", "sellers"),
        ):
            chosen = [m for m in members if m.kind == kind]
            weights = [m.weight if label == "population" else 1 for m in chosen]
            total = max(sum(weights), 1)
            for tech in ("4G", "5G", "any"):
                classes = [m.classes.get(tech, "none") for m in chosen]
                for name in SERVICE_CLASSES:
                    share = sum(w for w, c in zip(weights, classes, strict=True) if c == name)
                    row[f"{label}_{tech}_{name}"] = round(share / total, 4)
                row[f"{label}_{tech}_signal"] = round(
                    sum(w for w, c in zip(weights, classes, strict=True) if c != "none") / total, 4
                )
            if label != "population":
                for name in LEVELS:
                    row[f"{label}_{name}"] = sum(m.confidence == name for m in chosen)
        centres = [m for m in members if m.kind == "centre"]
        row["centres_with_signal"] = (
            round(sum(m.classes["any"] != "none" for m in centres) / len(centres), 4)
            if centres
            else None
        )
        rows.append(row)
    return rows


def stated_figures_check(province: Mapping[str, Any]) -> dict[str, Any]:
    """The province's claim (signal at 100% of commune centres, > 98% of villages) against
    the prediction."""
    centres = province["centres_with_signal"]
    villages = province["villages_any_signal"]
    centres_hold = centres is not None and centres >= 1.0
    villages_hold = villages > 0.98
    return {
        "commune_centres_with_signal": centres,
        "claimed_centres": 1.0,
        "centres_claim_holds": centres_hold,
        "villages_with_signal": villages,
        "claimed_villages": 0.98,
        "villages_claim_holds": villages_hold,
        "reason": reason(
            "claims_agree" if centres_hold and villages_hold else "claims_disagree",
            centres_share=centres,
            villages_share=villages,
        ).to_dict(),
    }


# ---------------------------------------------------------------- fibre cuts
def cut_impact(
    isolated_sites: Iterable[str],
    served_sellers: Mapping[str, str | None],
    village_servers: Mapping[str, tuple[str | None, int]],
) -> dict[str, Any]:
    """What a cut that isolates ``isolated_sites`` takes offline: the sellers with service
    (``served_sellers``: seller → serving site) and the villages (village → (serving site,
    population)) served by those sites, assuming they fall back to no other site."""
    sites = set(isolated_sites)
    sellers = sorted(code for code, site in served_sellers.items() if site in sites)
    villages = sorted(code for code, (site, _) in village_servers.items() if site in sites)
    return {
        "sites": sorted(sites),
        "sellers": sellers,
        "villages": villages,
        "population": sum(village_servers[v][1] for v in villages),
    }
