"""Readiness on hand-built scenarios with known answers (pure functions, no app)."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pytest
from affine import Affine

from registry import backhaul
from registry.backhaul import SiteBackhaul
from registry.errors import ValidationError
from registry.radio.coverage import CoverageParams, SectorSpec, compute_coverage
from registry.readiness import (
    REASON_CODES,
    Place,
    ReadinessParams,
    Reason,
    SiteInfo,
    TechGrid,
    cut_impact,
    event_alternatives,
    rank_event_places,
    reason,
    seller_verdicts,
)
from registry.terrain import Dem

CELL_M = 30.0
X0, Y0 = 300_000.0, 2_500_000.0  # upper-left corner (UTM 48N)
# the scenarios (distances, feasibility) were laid out on the Deygout losses
PARAMS = CoverageParams(max_radius_m=8_000.0, model="deygout")


def plain(rows: int = 80, cols: int = 240, height_m: float = 500.0) -> np.ndarray:
    return np.full((rows, cols), height_m, dtype=np.float32)


def dem_of(elevation: np.ndarray) -> Dem:
    return Dem(elevation, Affine(CELL_M, 0, X0, 0, -CELL_M, Y0), "EPSG:32648")


def xy(col: float, row: float) -> tuple[float, float]:
    return X0 + (col + 0.5) * CELL_M, Y0 - (row + 0.5) * CELL_M


def sector(
    site: str,
    col: float,
    row: float,
    *,
    tech: str = "4G",
    azimuth: float = 90.0,
    active: bool = True,
) -> SectorSpec:
    x, y = xy(col, row)
    lte = tech == "4G"
    return SectorSpec(
        site,
        f"{site}-{tech}",
        x,
        y,
        None,
        30.0,
        tech,
        1842.5 if lte else 2595.0,
        20 if lte else 100,
        azimuth,
        2.0,
        2.0,
        65.0,
        8.0,
        17.0,
        46.0 if lte else 50.0,
        site_active=active,
    )


def site(
    code: str,
    col: float,
    row: float,
    dem: Dem,
    *,
    status: str = "active",
    techs: tuple[str, ...] = ("4G",),
) -> SiteInfo:
    x, y = xy(col, row)
    ground = float(dem.elevation_m[int(row), int(col)])
    return SiteInfo(code, x, y, ground + 30.0, status, frozenset(techs))


def grids_of(dem: Dem, sectors: list[SectorSpec]) -> dict[str, TechGrid]:
    out = {}
    for tech in ("4G", "5G"):
        chosen = [s for s in sectors if s.technology == tech]
        if chosen:
            out[tech] = TechGrid.from_result(tech, compute_coverage(dem, chosen, PARAMS, workers=1))
    return out


def fibre(code: str) -> dict[str, SiteBackhaul]:
    return {code: SiteBackhaul(code, "fibre", True, 10_000.0)}


def place(code: str, col: float, row: float, **kw: str) -> Place:
    x, y = xy(col, row)
    return Place(code, x, y, **kw)


def test_seller_behind_a_ridge_is_limited_by_terrain_and_climbs_the_near_slope() -> None:
    elevation = plain()
    ridge = np.clip(350.0 - 15.0 * np.abs(np.arange(240) - 120), 0, None)  # peak at col 120
    elevation += ridge[None, :].astype(np.float32)
    dem = dem_of(elevation)
    grids = grids_of(dem, [sector("A", 20, 40)])
    seller = place("S1", 165, 40, phone_tech="4G", wanted_class="hd_live")
    [verdict] = seller_verdicts(
        [seller],
        grids,
        dem,
        [site("A", 20, 40, dem)],
        fibre("A"),
        ReadinessParams(walking_radius_m=2_000.0),
    )
    assert not verdict.meets_wanted
    assert verdict.limiting_factor == "terrain"
    assert verdict.reason.code == "terrain" and verdict.reason.params["site"] == "A"
    assert verdict.reason.params["above_m"] > 0
    spot = verdict.better_spot
    assert spot is not None
    ridge_x = xy(120, 40)[0]
    assert ridge_x - 3 * CELL_M <= spot["x_m"] < seller.x_m  # on the slope facing the seller
    assert spot["climb_m"] > 100 and 225 <= spot["bearing_deg"] <= 315  # uphill, to the west


def test_ten_sellers_on_satellite_backhaul_are_limited_by_backhaul() -> None:
    dem = dem_of(plain())
    grids = grids_of(dem, [sector("B", 20, 40)])
    sellers = [
        place(f"S{i}", 40 + i, 40, phone_tech="4G", wanted_class="hd_live") for i in range(10)
    ]
    sat = {"B": SiteBackhaul("B", "satellite", True, 20.0)}
    params = ReadinessParams(concurrent_streams_per_cell=10)
    verdicts = seller_verdicts(sellers, grids, dem, [site("B", 20, 40, dem)], sat, params)
    assert {v.limiting_factor for v in verdicts} == {"backhaul"}
    assert all(v.site_streams == 10 and v.backhaul_per_stream_mbps == 1.0 for v in verdicts)
    assert {v.service_class for v in verdicts} == {"basic_live"}
    alone = seller_verdicts(sellers[:1], grids, dem, [site("B", 20, 40, dem)], sat)
    assert alone[0].meets_wanted  # one stream alone gets 10 Mbps of the 20


def test_a_down_site_serves_nobody() -> None:
    dem = dem_of(plain())
    grids = grids_of(dem, [sector("C", 20, 40, active=False), sector("D", 230, 40, azimuth=270)])
    seller = place("S1", 30, 40, phone_tech="4G")
    [verdict] = seller_verdicts(
        [seller],
        grids,
        dem,
        [site("C", 20, 40, dem, status="down"), site("D", 230, 40, dem)],
        {**fibre("D"), "C": SiteBackhaul("C", "fibre", False, 0.0, reason="site is down")},
        ReadinessParams(search_radius_m=8_000.0),
    )
    assert verdict.site_code != "C"
    only_c = grids_of(dem, [sector("C", 20, 40, active=False)])
    [verdict] = seller_verdicts(
        [seller], only_c, dem, [site("C", 20, 40, dem, status="down")], {}, ReadinessParams()
    )
    assert verdict.service_class == "none" and verdict.limiting_factor == "site down"
    assert verdict.reason == Reason(
        "site_down",
        {"site": "C", "distance_km": verdict.reason.params["distance_km"], "status": "down"},
    )


def test_a_4g_phone_under_a_5g_only_sector() -> None:
    dem = dem_of(plain())
    grids = grids_of(dem, [sector("E", 20, 40, tech="5G")])
    sites = [site("E", 20, 40, dem, techs=("5G",))]
    four = place("S4", 40, 40, phone_tech="4G", wanted_class="hd_live")
    five = place("S5", 40, 40, phone_tech="5G", wanted_class="hd_live")
    v4, v5 = seller_verdicts([four, five], grids, dem, sites, fibre("E"))
    assert v4.service_class == "none" and v4.limiting_factor == "phone"
    assert v4.reason.code == "no_5g_phone_only_5g" and v4.reason.params["sector"] == "E-5G"
    assert v5.technology == "5G" and v5.service_class != "none"


def test_a_fibre_bridge_cut_counts_exactly_the_sellers_of_its_two_sites() -> None:
    nodes = [
        {"code": c, "kind": k}
        for c, k in (
            ("CORE", "core"),
            ("P1", "pop"),
            ("P2", "pop"),
            ("N1", "site"),
            ("N2", "site"),
            ("N3", "site"),
        )
    ]
    links = [
        {
            "code": code,
            "from_node_code": a,
            "to_node_code": b,
            "status": "active",
            "capacity_mbps": 10_000.0,
            "geometry": None,
        }
        for code, a, b in (
            ("L1", "CORE", "P1"),
            ("BRIDGE", "P1", "P2"),
            ("L3", "P2", "N1"),
            ("L4", "P2", "N2"),
            ("L5", "CORE", "N3"),
            ("L6", "P1", "N3"),
        )
    ]
    graph = backhaul.fibre_graph(nodes, links)
    sites = [
        {
            "code": s,
            "status": "active",
            "backhaul_kind": "fibre",
            "backhaul_capacity_mbps": 1000.0,
            "fibre_node_code": n,
        }
        for s, n in (("S1", "N1"), ("S2", "N2"), ("S3", "N3"))
    ]
    assert all(b.reachable for b in backhaul.site_backhaul(sites, graph).values())
    isolated = backhaul.isolated_by_cut(graph, "BRIDGE")
    assert isolated == {"P2", "N1", "N2"}
    assert backhaul.isolated_by_cut(graph, "L5") == set()  # N3 has a second route
    spof = backhaul.single_points_of_failure(graph)
    assert set(spof) == {"BRIDGE", "L3", "L4"}

    dem = dem_of(plain())
    grids = grids_of(
        dem, [sector("S1", 20, 20), sector("S2", 20, 60), sector("S3", 200, 40, azimuth=270)]
    )
    sellers = [place("A", 30, 20), place("B", 32, 21), place("C", 30, 60), place("D", 190, 40)]
    infos = [site("S1", 20, 20, dem), site("S2", 20, 60, dem), site("S3", 200, 40, dem)]
    verdicts = seller_verdicts(sellers, grids, dem, infos, backhaul.site_backhaul(sites, graph))
    cut_sites = {s["code"] for s in sites if s["fibre_node_code"] in isolated}
    served = {v.code: v.site_code for v in verdicts if v.service_class != "none"}
    assert set(served) == {"A", "B", "C", "D"}
    impact = cut_impact(cut_sites, served, {"V1": ("S1", 300), "V2": ("S3", 200)})
    assert impact["sites"] == ["S1", "S2"]
    assert impact["sellers"] == ["A", "B", "C"]
    assert (impact["villages"], impact["population"]) == (["V1"], 300)


def test_event_ranking_prefers_feasible_places_then_the_faster_then_sellers_nearby() -> None:
    dem = dem_of(plain())
    grids = grids_of(dem, [sector("F", 20, 40)])
    candidates = [place("near", 25, 40), place("far", 200, 40), place("mid", 60, 40)]
    sellers = [place(f"S{i}", 60 + i, 40) for i in range(5)]
    options = rank_event_places(
        candidates,
        streams=3,
        quality="hd_live",
        grids=grids,
        backhaul=fibre("F"),
        sellers=sellers,
        travel_radius_m=500.0,
    )
    # near and mid: the same rate per stream (the backhaul caps both); mid has the sellers
    assert [o.code for o in options] == ["mid", "near", "far"]
    assert options[0].per_stream_mbps == options[1].per_stream_mbps
    assert options[0].feasible and options[0].sellers_nearby == 5
    assert options[-1].code == "far" and not options[-1].feasible
    why = options[0].reason
    assert (why.code, why.params["streams"], why.params["quality"]) == ("event_rate", 3, "hd_live")
    assert event_alternatives(options, streams=3, quality="hd_live") == []
    with pytest.raises(ValidationError, match="unknown quality"):
        rank_event_places(
            candidates,
            streams=3,
            quality="4k_live",
            grids=grids,
            backhaul=fibre("F"),
            sellers=sellers,
            travel_radius_m=500.0,
        )


def test_an_infeasible_event_says_what_is_possible() -> None:
    dem = dem_of(plain())
    grids = grids_of(dem, [sector("F", 20, 40)])
    candidates = [place("near", 25, 40), place("mid", 60, 40), place("far", 200, 40)]
    kw: dict[str, Any] = {
        "grids": grids,
        "backhaul": fibre("F"),
        "sellers": [],
        "travel_radius_m": 500.0,
    }
    one = rank_event_places(candidates, streams=1, quality="hd_live", **kw)
    capacity = {o.code: o.per_stream_mbps for o in one}  # one stream: the whole capacity
    streams = int(capacity["near"] // 4.0) + 1  # one more than the best place carries
    options = rank_event_places(candidates, streams=streams, quality="hd_live", **kw)
    assert not any(o.feasible for o in options)
    assert [o.max_streams for o in options] == [int(capacity[o.code] // 4.0) for o in options]
    most, best = event_alternatives(options, streams=streams, quality="hd_live")
    top = options[0].code  # near and mid tie (the backhaul caps both): the better ranked
    assert most == Reason(
        "event_best_streams", {"streams": streams - 1, "quality": "hd_live", "place": top}
    )
    per_stream = capacity["near"] / streams
    expected = "sd_live" if per_stream >= 2.5 else "basic_live" if per_stream >= 1 else None
    assert expected is not None
    assert best == Reason(
        "event_best_quality", {"streams": streams, "quality": expected, "place": top}
    )


def test_reasons_carry_exactly_their_declared_parameters() -> None:
    assert reason("distance", site="A", distance_km=3.2).params == {
        "site": "A",
        "distance_km": 3.2,
    }
    with pytest.raises(ValueError, match="parameters"):
        reason("distance", site="A")
    assert all(isinstance(p, tuple) for p in REASON_CODES.values())


def test_spof_graph_is_networkx() -> None:
    graph = backhaul.fibre_graph([{"code": "C", "kind": "core"}], [])
    assert isinstance(graph, nx.Graph) and backhaul.single_points_of_failure(graph) == {}


def test_a_site_cut_off_from_the_core_is_the_reason_not_the_distance() -> None:
    """Coverage leaves a site without a backhaul route silent: a seller beside it is told the
    site is cut off, not that it is too far."""
    dem = dem_of(plain())
    grids = grids_of(dem, [sector("E", 20, 40, active=False)])
    cut = {"E": SiteBackhaul("E", "fibre", False, 0.0, reason="no fibre node")}
    [verdict] = seller_verdicts(
        [place("S1", 22, 40, phone_tech="4G")], grids, dem, [site("E", 20, 40, dem)], cut
    )
    assert verdict.service_class == "none" and verdict.limiting_factor == "backhaul"
    assert verdict.reason == Reason("backhaul_cut", {"site": "E"})
