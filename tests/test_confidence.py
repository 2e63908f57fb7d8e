"""Confidence of the verdicts on hand-built synthetic terrain (pure functions, no app)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from affine import Affine

from registry.confidence import (
    ConfidenceParams,
    required_sinr_db,
    sector_uplinks,
    terrain_sigma_db,
)
from registry.radio.linkbudget import UplinkParams, uplink_rate_mbps
from registry.readiness import Place, ReadinessParams, rank_event_places, seller_verdicts
from tests.test_readiness import PARAMS, dem_of, fibre, grids_of, place, plain, sector, site


def ridge_dem(peak_m: float) -> np.ndarray:
    """The plain with a north-south ridge peaking ``peak_m`` above it at column 120."""
    ridge = np.clip(peak_m - 15.0 * np.abs(np.arange(240) - 120), 0, None)
    return plain() + ridge[None, :].astype(np.float32)


def verdict_of(elevation: np.ndarray, seller: Place, params: ReadinessParams | None = None) -> Any:
    dem = dem_of(elevation)
    sectors = [sector("A", 20, 40)]
    p = params or ReadinessParams()
    [verdict] = seller_verdicts(
        [seller],
        grids_of(dem, sectors),
        dem,
        [site("A", 20, 40, dem)],
        fibre("A"),
        p,
        uplinks=sector_uplinks(sectors, PARAMS, p.confidence),
    )
    return verdict


def test_open_flat_ground_near_a_site_is_likely() -> None:
    v = verdict_of(plain(), place("S", 40, 40, phone_tech="4G", wanted_class="hd_live"))
    assert v.meets_wanted and v.confidence == "likely"
    assert v.p_meets_wanted == pytest.approx(1.0, abs=1e-3)
    assert v.sigma_db == pytest.approx(8.0, abs=0.2)  # the shadow sigma; flat: no terrain spread
    assert v.margin_db > 30


def test_behind_a_ridge_at_the_class_threshold_is_borderline() -> None:
    v = verdict_of(ridge_dem(40.0), place("S", 200, 40, phone_tech="4G", wanted_class="hd_live"))
    assert not v.meets_wanted and v.limiting_factor == "terrain"
    assert v.confidence == "borderline"
    assert abs(v.margin_db) < 1.0 and v.p_meets_wanted == pytest.approx(0.5, abs=0.05)


def test_far_beyond_a_high_ridge_is_unlikely() -> None:
    v = verdict_of(ridge_dem(150.0), place("S", 200, 40, phone_tech="4G", wanted_class="hd_live"))
    assert v.rsrp_dbm is not None  # a weak signal reaches, but far too weak
    assert v.confidence == "unlikely" and v.p_meets_wanted < 0.05 and v.margin_db < -10
    v = verdict_of(ridge_dem(350.0), place("S", 200, 40, phone_tech="4G", wanted_class="hd_live"))
    assert (v.service_class, v.p_meets_wanted, v.confidence) == ("none", 0.0, "unlikely")


def test_terrain_spread_widens_sigma_and_thresholds_are_settings() -> None:
    at_edge = verdict_of(ridge_dem(60.0), place("S", 125, 40, wanted_class="basic_live"))
    assert at_edge.sigma_db > 9.0  # the ridge's shadow edge: neighbours differ by many dB
    strict = ReadinessParams(confidence=ConfidenceParams(likely_min_p=0.99, unlikely_max_p=0.01))
    v = verdict_of(ridge_dem(30.0), place("S", 200, 40, wanted_class="hd_live"), strict)
    assert 0.01 <= v.p_meets_wanted < 0.99 and v.confidence == "borderline"
    with pytest.raises(ValueError):
        ConfidenceParams(likely_min_p=0.1, unlikely_max_p=0.5)


def test_meeting_the_class_at_the_budgets_reliability_reads_at_least_that_probability() -> None:
    v = verdict_of(ridge_dem(20.0), place("S", 200, 40, wanted_class="sd_live"))
    assert v.meets_wanted and v.p_meets_wanted >= UplinkParams().location_reliability


def test_required_sinr_inverts_the_rate_mapping() -> None:
    uplink = UplinkParams()
    for rate in (0.5, 2.5, 4.0, 8.0):
        sinr = required_sinr_db(rate, 9e6, 1.0, uplink)
        # uplink_rate_mbps subtracts the budget's margins from the coupling gain: add them back
        margin = uplink.interference_margin_db + 8.0 * 1.2815515655446004
        got = uplink_rate_mbps(
            sinr + margin,
            ue_power_dbm=0.0,
            noise_dbm=0.0,
            bandwidth_hz=9e6,
            time_fraction=1.0,
            radio=PARAMS.radio,
            uplink=uplink,
        )
        assert float(got) == pytest.approx(rate, rel=1e-6)
    assert required_sinr_db(18.1, 9e6, 1.0, uplink) == math.inf


def test_terrain_sigma_counts_no_service_as_the_floor() -> None:
    grid = np.full((5, 5), -90.0)
    grid[2, 3] = np.nan
    t = Affine(30.0, 0, 0, 0, -30.0, 150.0)
    sigma = terrain_sigma_db(grid, t, 75.0, 75.0, radius_m=30.0, floor_dbm=-120.0)
    assert sigma == pytest.approx(float(np.std([-90.0] * 4 + [-120.0])))
    assert terrain_sigma_db(grid, t, -500.0, 75.0, radius_m=30.0, floor_dbm=-120.0) == 0.0


def test_event_ranking_prefers_likely_places_after_feasibility() -> None:
    dem = dem_of(plain())
    sectors = [sector("F", 20, 40)]
    confidence = ConfidenceParams(location_sigma=30.0, likely_min_p=0.9)
    params = ReadinessParams(confidence=confidence)
    options = rank_event_places(
        [place("near", 25, 40), place("far", 200, 40), place("mid", 60, 40)],
        streams=3,
        quality="hd_live",
        grids=grids_of(dem, sectors),
        backhaul=fibre("F"),
        sellers=[place(f"S{i}", 60 + i, 40) for i in range(5)],
        travel_radius_m=500.0,
        params=params,
        uplinks=sector_uplinks(sectors, PARAMS, confidence),
    )
    by_code = {o.code: o for o in options}
    assert by_code["near"].confidence == "likely" and by_code["mid"].confidence == "borderline"
    assert by_code["mid"].feasible and by_code["mid"].sellers_nearby == 5
    assert [o.code for o in options] == ["near", "mid", "far"]  # likely before more sellers


def test_p1812_location_sigma() -> None:
    sectors = [sector("A", 20, 40)]
    [up] = sector_uplinks(sectors, PARAMS, ConfidenceParams(location_sigma="p1812")).values()
    assert up.location_sigma_db == pytest.approx(1.738, abs=0.01)  # P.1812 §4.7, 1.84 GHz


def test_the_map_draws_borderline_sellers_apart() -> None:
    import geopandas as gpd
    from shapely.geometry import Point

    from registry import maps

    sellers = gpd.GeoDataFrame(
        {"code": ["A", "B"], "name": ["a", "b"], "confidence": ["likely", "borderline"]},
        geometry=[Point(103.6, 22.3), Point(103.7, 22.3)],
        crs="EPSG:4326",
    )
    html = maps.registry_map({"sellers": sellers}).get_root().render()
    assert html.count(maps.BORDERLINE_STYLE["dashArray"]) >= 1 and maps.BORDERLINE_TITLE in html
    assert maps._borderline_style({"properties": {"confidence": "likely"}}) == {}
