"""Readiness use cases: seller verdicts, KPIs, fibre-cut impact, event places, the report.

`load_inputs` is the one place that gathers what the readiness core reads (DEM, the current
coverage version's grids, backhaul, sites with their antennas, sellers, villages, communes),
all in the DEM's CRS; lon/lat appear only in the flat rows handed to the JSON, CSV and HTML
edges.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyproj import Transformer
from sqlalchemy.orm import Session

from registry import backhaul, readiness, terrain
from registry.backhaul import SiteBackhaul
from registry.confidence import SectorUplink, sector_uplinks
from registry.errors import NotFoundError, ValidationError
from registry.models import Commune, Measurement, Seller, Village
from registry.readiness import Place, ReadinessParams, SiteInfo, TechGrid
from registry.services import measurements, queries
from registry.services.coverage import (
    WGS84,
    CoverageVersion,
    current,
    fibre_network,
    sector_specs,
    site_backhaul,
    site_ground_m,
    to_dem,
    working_dem,
)
from registry.services.planning import Planning, planning

Config = Mapping[str, Any]


@dataclass(frozen=True)
class ReadinessInputs:
    """Everything the readiness analysis reads, loaded once per request or command."""

    planning: Planning
    dem: terrain.Dem
    coverage: CoverageVersion
    grids: dict[str, TechGrid]
    graph: Any  # the fibre network (`backhaul.fibre_graph`)
    site_nodes: dict[str, str]  # fibre-fed site → its fibre node
    backhaul: dict[str, SiteBackhaul]
    sites: list[SiteInfo]
    sellers: list[Seller]
    villages: list[Village]
    communes: list[Commune]
    seller_commune: dict[str, str]
    uplinks: dict[str, SectorUplink]  # each sector's constants for the confidence
    to_dem: Transformer
    to_lonlat: Transformer
    #: Each seller's recent measured uplink (`measurements.recent_uplink`).
    measured: Mapping[str, Measurement] = field(default_factory=dict)

    @property
    def params(self) -> ReadinessParams:
        return self.planning.readiness

    def place(self, code: str, lon: float, lat: float, **kw: str) -> Place:
        x, y = self.to_dem.transform(lon, lat)
        return Place(code, x, y, **kw)

    def seller_places(self) -> list[Place]:
        return [
            self.place(
                s.code, s.geom.x, s.geom.y, phone_tech=s.phone_tech, wanted_class=s.wanted_class
            )
            for s in self.sellers
        ]

    def lonlat(self, x_m: float, y_m: float) -> tuple[float, float]:
        lon, lat = self.to_lonlat.transform(x_m, y_m)
        return round(lon, 6), round(lat, 6)

    def centres(self) -> list[tuple[Commune, float, float]]:
        """The communes that have an administrative centre, with its lon/lat."""
        return [
            (c, c.admin_center_lon, c.admin_center_lat)
            for c in self.communes
            if c.admin_center_lon is not None and c.admin_center_lat is not None
        ]

    def any_class(self, code: str, lon: float, lat: float) -> str:
        """The best class any phone gets at a point today (radio and backhaul)."""
        return readiness.place_classes(
            self.place(code, lon, lat), self.grids, self.backhaul, self.params
        )["any"]


def load_inputs(
    config: Config, session: Session, *, concurrent_streams: int | None = None
) -> ReadinessInputs:
    """The readiness inputs of the registry as ``session`` sees it, over the current coverage
    version (resolved once here). NotFoundError while there is no DEM or coverage."""
    dem = working_dem(config)
    version = current(config)
    grids = measurements.calibrated_grids(version, version.grids(), session)
    graph = fibre_network(session)
    sites = queries.sites(session)
    lonlat_to_dem = to_dem(dem)
    by_site: dict[str, list[Any]] = {}
    for sector in queries.sectors(session):
        by_site.setdefault(sector.site_code, []).append(sector)
    infos = []
    for s in sites:
        x, y = lonlat_to_dem.transform(s.geom.x, s.geom.y)
        ground = site_ground_m(dem, x, y, s.ground_elevation_m)
        antennas = {sector.code: ground + sector.height_m for sector in by_site.get(s.code, [])}
        infos.append(
            SiteInfo(
                s.code,
                x,
                y,
                max(antennas.values(), default=ground + s.tower_height_m),
                s.status,
                frozenset(sector.technology for sector in by_site.get(s.code, [])),
                antennas,
            )
        )
    sellers = queries.sellers(session)
    villages = queries.villages(session)
    village_commune = {v.code: v.commune_code for v in villages}
    plan = planning(config, concurrent_streams=concurrent_streams)
    reach = site_backhaul(sites, graph)
    return ReadinessInputs(
        planning=plan,
        dem=dem,
        coverage=version,
        grids=grids,
        graph=graph,
        site_nodes={
            s.code: s.fibre_node_code
            for s in sites
            if s.backhaul_kind == "fibre" and s.fibre_node_code
        },
        backhaul=reach,
        sites=infos,
        sellers=sellers,
        villages=villages,
        communes=queries.communes(session),
        seller_commune={s.code: village_commune.get(s.village_code or "", "") for s in sellers},
        uplinks=sector_uplinks(
            sector_specs(session, dem, reach), plan.coverage, plan.readiness.confidence
        ),
        to_dem=lonlat_to_dem,
        to_lonlat=Transformer.from_crs(dem.crs, WGS84, always_xy=True),
        measured=measurements.recent_uplink(session, sellers),
    )


# ---------------------------------------------------------------- sellers
def seller_rows(
    inputs: ReadinessInputs, *, only: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """Every seller's verdict (or only those in ``only``) as a flat record: lon/lat, the
    better spot in lon/lat."""
    verdicts = readiness.seller_verdicts(
        inputs.seller_places(),
        inputs.grids,
        inputs.dem,
        inputs.sites,
        inputs.backhaul,
        inputs.params,
        only=only,
        uplinks=inputs.uplinks,
    )
    sellers = {s.code: s for s in inputs.sellers}
    rows = []
    for verdict in verdicts:
        seller = sellers[verdict.code]
        row = {
            "name": seller.name,
            "commune_code": inputs.seller_commune[seller.code],
            "lon": seller.geom.x,
            "lat": seller.geom.y,
            **verdict.to_dict(),
        }
        spot = row.pop("better_spot")
        if spot:
            spot_lon, spot_lat = inputs.lonlat(spot["x_m"], spot["y_m"])
            row.update(
                better_spot_lon=spot_lon,
                better_spot_lat=spot_lat,
                better_spot_distance_m=spot["distance_m"],
                better_spot_bearing_deg=spot["bearing_deg"],
                better_spot_climb_m=spot["climb_m"],
            )
        rows.append(
            measurements.apply_measured(
                row,
                inputs.measured.get(seller.code),
                inputs.params.thresholds,
                inputs.params.required_mbps(seller.wanted_class),
            )
        )
    return rows


def seller_confidence(inputs: ReadinessInputs) -> dict[str, str | None]:
    """Every seller's confidence level by code (the map draws the borderline ones apart)."""
    return {row["code"]: row["confidence"] for row in seller_rows(inputs)}


def seller_verdict(inputs: ReadinessInputs, code: str) -> dict[str, Any] | None:
    """One seller's verdict (the others only count as streams sharing its cell)."""
    rows = seller_rows(inputs, only={code})
    return rows[0] if rows else None


def sellers_near_site(
    inputs: ReadinessInputs, site_code: str, *, radius_m: float
) -> list[dict[str, Any]]:
    """Verdicts of the sellers the site serves or could serve (within ``radius_m`` of it),
    nearest first, each with its ``distance_m``."""
    site = next((s for s in inputs.sites if s.code == site_code), None)
    if site is None:
        return []
    distance = {}
    for place in inputs.seller_places():
        d = math.hypot(place.x_m - site.x_m, place.y_m - site.y_m)
        link = readiness.radio_link(place, inputs.grids, inputs.params)
        if link.site_code == site_code or d <= radius_m:
            distance[place.code] = d
    rows = [{**r, "distance_m": distance[r["code"]]} for r in seller_rows(inputs, only=distance)]
    rows.sort(key=lambda r: r["distance_m"])
    return rows


# ---------------------------------------------------------------- KPIs, cuts, report
def kpi_table(
    inputs: ReadinessInputs,
    verdicts: list[dict[str, Any]] | None = None,
    *,
    province: str | None = None,
) -> list[dict[str, Any]]:
    """KPI rows: the province (or all provinces) first, then each of its communes.

    A province's rows count only its communes' villages, sellers and centres, so adding
    another province to the registry leaves them as they were. Sellers count with the
    confidence of their verdicts (``verdicts``: `seller_rows`, computed here when not given);
    villages with that of the siting target class (``SITING_TARGET_CLASS``).
    """
    communes = [c for c in inputs.communes if province is None or c.province == province]
    if province is not None and not communes:
        known = sorted({c.province for c in inputs.communes})
        raise NotFoundError(f"no province {province!r}; known: {', '.join(known) or 'none'}")
    names = {c.code: c.name for c in communes}
    provinces = sorted({c.province for c in communes})
    total_name = f"{provinces[0]} (tỉnh)" if len(provinces) == 1 else "all provinces"
    target = inputs.planning.gain.target_class
    sure = {v["code"]: v["confidence"] for v in verdicts or seller_rows(inputs)}

    def village_confidence(code: str, lon: float, lat: float) -> str:
        return readiness.place_confidence(
            inputs.place(code, lon, lat, wanted_class=target),
            inputs.grids,
            inputs.backhaul,
            inputs.uplinks,
            inputs.params,
        ).confidence

    def classes(code: str, lon: float, lat: float) -> dict[str, str]:
        return readiness.place_classes(
            inputs.place(code, lon, lat), inputs.grids, inputs.backhaul, inputs.params
        )

    items = [
        readiness.Counted(
            "village",
            v.commune_code,
            v.population,
            classes(v.code, v.geom.x, v.geom.y),
            village_confidence(v.code, v.geom.x, v.geom.y),
        )
        for v in inputs.villages
        if province is None or v.commune_code in names
    ]
    items += [
        readiness.Counted(
            "seller",
            inputs.seller_commune[s.code],
            1,
            classes(s.code, s.geom.x, s.geom.y),
            sure.get(s.code),
        )
        for s in inputs.sellers
        if province is None or inputs.seller_commune[s.code] in names
    ]
    items += [
        readiness.Counted("centre", c.code, 1, classes(c.code, lon, lat))
        for c, lon, lat in inputs.centres()
        if c.code in names
    ]
    return readiness.coverage_kpis(items, names, total_name=total_name)


@dataclass(frozen=True)
class Kpis:
    """The KPI table (province first) and the province's stated figures checked."""

    rows: list[dict[str, Any]]
    stated_figures: dict[str, Any] | None


def kpis(
    inputs: ReadinessInputs,
    verdicts: list[dict[str, Any]] | None = None,
    *,
    province: str | None = None,
) -> Kpis:
    rows = kpi_table(inputs, verdicts, province=province)
    return Kpis(rows, readiness.stated_figures_check(rows[0]))


def fibre_cuts(
    inputs: ReadinessInputs, verdicts: list[dict[str, Any]], *, link_code: str | None = None
) -> list[dict[str, Any]]:
    """Impact of cutting one link, or of every single point of failure, most sellers first.

    A cut takes offline the sellers and villages served by the sites it isolates (assuming
    they fall back to no other site, so this is the worst case).
    """
    if link_code is None:
        isolated = backhaul.single_points_of_failure(inputs.graph)
    else:
        if not any(link_code in codes for *_, codes in inputs.graph.edges(data="codes")):
            raise NotFoundError(f"no working fibre link {link_code!r}")
        isolated = {link_code: backhaul.isolated_by_cut(inputs.graph, link_code)}
    served = {v["code"]: v["site_code"] for v in verdicts if v["service_class"] != "none"}
    village_servers = {}
    for v in inputs.villages:
        link = readiness.radio_link(
            inputs.place(v.code, v.geom.x, v.geom.y), inputs.grids, inputs.params
        )
        village_servers[v.code] = (link.site_code, v.population)
    rows = []
    for code, nodes in isolated.items():
        sites = [s for s, node in inputs.site_nodes.items() if node in nodes]
        impact = readiness.cut_impact(sites, served, village_servers)
        rows.append({"link_code": code, "isolated_nodes": len(nodes), **impact})
    rows.sort(key=lambda r: (-len(r["sellers"]), -r["population"], r["link_code"]))
    return rows


def cuts(inputs: ReadinessInputs, *, link_code: str | None = None) -> list[dict[str, Any]]:
    """`fibre_cuts` over every seller's verdict."""
    return fibre_cuts(inputs, seller_rows(inputs), link_code=link_code)


def report(inputs: ReadinessInputs, *, top: int = 5, province: str | None = None) -> dict[str, Any]:
    """Seller verdicts, the KPI table (of one province, or all) with the stated figures
    checked, and the top single points of failure of the fibre network."""
    verdicts = seller_rows(inputs)
    table = kpi_table(inputs, verdicts, province=province)
    return {
        "verdicts": verdicts,
        "kpis": table,
        "verdict_counts": dict(Counter(v["service_class"] for v in verdicts)),
        "limiting_factors": dict(Counter(v["limiting_factor"] for v in verdicts)),
        "stated_figures": readiness.stated_figures_check(table[0]),
        "single_points_of_failure": fibre_cuts(inputs, verdicts)[:top],
    }


# ---------------------------------------------------------------- events
@dataclass(frozen=True)
class EventPlaces:
    """Ranked event places (flat rows), and what is possible when none is feasible
    (``{"code", "params"}`` reasons whose ``place`` is a code of ``names``)."""

    rows: list[dict[str, Any]]
    alternatives: list[dict[str, Any]]
    names: dict[str, str]


def rank_places(
    inputs: ReadinessInputs,
    places: list[Place],
    names: dict[str, str],
    *,
    streams: int,
    quality: str,
    travel_radius_m: float,
) -> EventPlaces:
    """``places`` ranked for an event of ``streams`` streams of ``quality`` (the event tool's
    and the commune sheet's ranking; ``names`` maps their codes to names)."""
    options = readiness.rank_event_places(
        places,
        streams=streams,
        quality=quality,
        grids=inputs.grids,
        backhaul=inputs.backhaul,
        sellers=inputs.seller_places(),
        travel_radius_m=travel_radius_m,
        params=inputs.params,
        uplinks=inputs.uplinks,
    )
    by_code = {p.code: p for p in places}
    rows = []
    for o in options:
        lon, lat = inputs.lonlat(by_code[o.code].x_m, by_code[o.code].y_m)
        rows.append({"name": names[o.code], "lon": lon, "lat": lat, **o.to_dict()})
    alternatives = readiness.event_alternatives(options, streams=streams, quality=quality)
    return EventPlaces(rows, [a.to_dict() for a in alternatives], names)


def event_places(
    inputs: ReadinessInputs, *, streams: int, quality: str, travel_radius_m: float, candidates: str
) -> EventPlaces:
    """Ranked event places among villages or commune centres."""
    if streams < 1:
        raise ValidationError(
            "bad streams", details=[{"field": "streams", "reason": "must be at least 1"}]
        )
    if candidates == "villages":
        places = [inputs.place(v.code, v.geom.x, v.geom.y) for v in inputs.villages]
        names = {v.code: v.name for v in inputs.villages}
    elif candidates == "communes":
        places = [inputs.place(c.code, lon, lat) for c, lon, lat in inputs.centres()]
        names = {c.code: c.name for c in inputs.communes}
    else:
        raise ValidationError(
            "bad candidates",
            details=[{"field": "candidates", "reason": "must be villages or communes"}],
        )
    return rank_places(
        inputs, places, names, streams=streams, quality=quality, travel_radius_m=travel_radius_m
    )
