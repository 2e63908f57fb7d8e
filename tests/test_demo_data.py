"""Tests of the Lai Châu demo data built by geodata.build (coarse DEM for speed)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from geopandas.testing import assert_geodataframe_equal
from rasterio.transform import rowcol
from rasterio.warp import transform_bounds

from geodata.build import build_demo, split_population
from geodata.dem import Dem
from geodata.land import to_utm
from geodata.network import (
    BTS_UNITS_REPORTED,
    LEADER,
    LEGACY_UNITS_PER_SITE,
    MICROWAVE_HOP_M,
    Reach,
)

COARSE_M = 500.0  # fast: the whole build takes about 2 s
PROVINCE_POPULATION = 512_601  # sum of the real 2025 commune populations
# 3GPP channel bandwidths in MHz: LTE (TS 36.101) and NR FR1 (TS 38.101-1)
LTE_BANDWIDTHS = {1.4, 3.0, 5.0, 10.0, 15.0, 20.0}
NR_BANDWIDTHS = {5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0}
BINH_LU = "03390"
GEO_LAYERS = ("communes", "villages", "sites", "fibre_nodes", "fibre_links", "sellers", "events")

Layers = dict[str, gpd.GeoDataFrame | pd.DataFrame]


def _heights(folder: Path) -> np.ndarray:
    with rasterio.open(folder / "dem.tif") as src:
        return src.read(1)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def demo(out_dir: Path) -> Layers:
    return build_demo(out_dir, dem_resolution_m=COARSE_M)


def test_village_populations_sum_to_the_real_commune_populations(demo: Layers) -> None:
    villages, communes = demo["villages"], demo["communes"]
    assert villages["population"].sum() == PROVINCE_POPULATION
    per_commune = villages.groupby("commune_code")["population"].sum().sort_index()
    real = communes.set_index("code")["population"].sort_index()
    pd.testing.assert_series_equal(per_commune, real, check_names=False)
    assert (villages["population"] >= 1).all()
    ratio = villages["population"] / villages["households"]
    assert ratio.between(4.0, 6.0).all() and abs(ratio.mean() - 4.8) < 0.2


def test_every_village_lies_inside_its_commune(demo: Layers) -> None:
    polygons = demo["communes"].set_index("code").geometry
    villages = demo["villages"]
    own = polygons.loc[villages["commune_code"]].values
    inside = shapely.contains(own, villages.geometry.values)
    assert inside.all(), villages.loc[~inside, "code"].tolist()


def test_village_names_are_unique_within_a_commune(demo: Layers) -> None:
    assert not demo["villages"].duplicated(["commune_code", "name"]).any()


def test_villages_prefer_gentler_ground_than_average(demo: Layers, out_dir: Path) -> None:
    with rasterio.open(out_dir / "dem.tif") as src:
        heights = src.read(1).astype(float)
        slope = np.degrees(np.arctan(np.hypot(*np.gradient(heights, src.res[0]))))
        x, y = to_utm(demo["villages"].geometry.x, demo["villages"].geometry.y)
        rows, cols = rowcol(src.transform, x, y)
    assert np.median(slope[rows, cols]) < np.median(slope)


def test_sellers_live_near_their_village_inside_its_commune(demo: Layers) -> None:
    sellers = demo["sellers"]
    villages = demo["villages"].set_index("code")
    assert sellers["village_code"].isin(villages.index).all()
    polygons = demo["communes"].set_index("code").geometry
    own = villages.loc[sellers["village_code"]]
    assert shapely.contains(polygons.loc[own["commune_code"]].values, sellers.geometry.values).all()
    home, seller = (
        gpd.GeoSeries(points, crs=4326).to_crs(32648)
        for points in (own.geometry.values, sellers.geometry.values)
    )
    assert home.distance(seller).max() < 310


def test_sites_and_events_lie_inside_their_commune(demo: Layers) -> None:
    polygons = demo["communes"].set_index("code").geometry
    for layer in ("sites", "events"):
        frame = demo[layer]
        own = polygons.loc[frame["commune_code"]].values
        assert shapely.contains(own, frame.geometry.values).all(), layer


def test_codes_are_unique(demo: Layers) -> None:
    for name, frame in demo.items():
        assert frame["code"].is_unique, name
    assert demo["sellers"]["handle"].is_unique


def test_foreign_keys_resolve(demo: Layers) -> None:
    communes = set(demo["communes"]["code"])
    sites, nodes = demo["sites"], set(demo["fibre_nodes"]["code"])
    assert demo["villages"]["commune_code"].isin(communes).all()
    assert sites["commune_code"].isin(communes).all()
    assert demo["events"]["commune_code"].isin(communes).all()
    assert demo["sectors"]["site_code"].isin(sites["code"]).all()
    fed = sites["backhaul_kind"] == "fibre"
    assert sites.loc[fed, "fibre_node_code"].isin(nodes).all()
    assert sites.loc[~fed, "fibre_node_code"].isna().all()
    links = demo["fibre_links"]
    assert links["from_node_code"].isin(nodes).all() and links["to_node_code"].isin(nodes).all()


def test_fibre_graph_is_rooted_at_the_core_and_feeds_every_fibre_site(demo: Layers) -> None:
    nodes, links, sites = demo["fibre_nodes"], demo["fibre_links"], demo["sites"]
    (core,) = nodes.loc[nodes["kind"] == "core", "code"]
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes["code"])
    graph.add_edges_from(zip(links["from_node_code"], links["to_node_code"], strict=True))
    assert nx.is_weakly_connected(graph)
    reachable = nx.descendants(graph, core) | {core}  # links point away from the core
    assert reachable == set(nodes["code"])
    fed = sites.loc[sites["backhaul_kind"] == "fibre", "fibre_node_code"]
    assert fed.isin(reachable).all() and len(fed) > 0
    assert set(nodes.loc[nodes["kind"] == "site", "code"]) <= set(fed)  # others sit at a PoP
    assert shapely.length(links.geometry.values).min() > 0
    assert {"QL4D", "QL32", "QL12", "QL4H"} <= set(links["road"].dropna())


def test_fibre_links_run_from_node_to_node(demo: Layers) -> None:
    nodes = demo["fibre_nodes"].set_index("code").geometry
    links = demo["fibre_links"]
    starts = shapely.get_point(links.geometry.values, 0)
    ends = shapely.get_point(links.geometry.values, -1)
    assert shapely.equals(starts, nodes.loc[links["from_node_code"]].values).all()
    assert shapely.equals(ends, nodes.loc[links["to_node_code"]].values).all()


def test_backhaul_capacity_ranges(demo: Layers) -> None:
    sites = demo["sites"]
    ranges = {"fibre": (1_000, 10_000), "microwave": (150, 1_000), "satellite": (20, 100)}
    for kind, (low, high) in ranges.items():
        capacity = sites.loc[sites["backhaul_kind"] == kind, "backhaul_capacity_mbps"]
        assert capacity.between(low, high).all(), kind
    counts = sites["backhaul_kind"].value_counts()
    assert counts["microwave"] > counts["fibre"] > counts.get("satellite", 0)
    # satellite only where no fibre-fed site is within one microwave hop
    utm = sites.to_crs(32648).geometry
    fibre = utm[sites["backhaul_kind"] == "fibre"].union_all()
    assert (utm[sites["backhaul_kind"] == "satellite"].distance(fibre) > MICROWAVE_HOP_M).all()


def test_sectors_use_3gpp_bandwidths_and_sensible_geometry(demo: Layers) -> None:
    sectors = demo["sectors"]
    lte, nr = sectors[sectors["technology"] == "4G"], sectors[sectors["technology"] == "5G"]
    assert set(lte["bandwidth_mhz"]) <= LTE_BANDWIDTHS
    assert set(nr["bandwidth_mhz"]) <= NR_BANDWIDTHS
    frequencies = sectors.groupby("band")["freq_mhz"].agg(set).to_dict()
    assert frequencies == {"B28": {780.5}, "B3": {1842.5}, "n41": {2595.0}}
    assert sectors["azimuth_deg"].between(0, 360, inclusive="left").all()
    tower = demo["sites"].set_index("code")["tower_height_m"].loc[sectors["site_code"]].values
    assert (sectors["height_m"].values <= tower).all() and (sectors["height_m"] > 0).all()
    # every site: three 4G sectors about 120° apart
    per_site = lte.groupby("site_code")["azimuth_deg"]
    assert (per_site.size() == 3).all() and len(per_site) == len(demo["sites"])
    gaps = per_site.apply(lambda a: np.diff(np.sort(np.r_[a.values, a.values.min() + 360])))
    assert all(((g >= 100) & (g <= 140)).all() for g in gaps)


def test_5g_at_towns_urban_centres_and_throughout_binh_lu(demo: Layers) -> None:
    sites, sectors = demo["sites"], demo["sectors"]
    five_g = set(sectors.loc[sectors["technology"] == "5G", "site_code"])
    binh_lu = set(sites.loc[sites["commune_code"] == BINH_LU, "code"])
    assert binh_lu and binh_lu <= five_g
    assert (sectors[sectors["technology"] == "5G"].groupby("site_code").size() == 3).all()
    assert 0 < len(five_g) < len(sites) / 4


def test_counts_are_in_the_expected_ranges(demo: Layers) -> None:
    assert len(demo["communes"]) == 38
    assert 900 <= len(demo["villages"]) <= 1_100
    sites, sectors = demo["sites"], demo["sectors"]
    # The site count follows the published 2,021 BTS units (one unit per technology per
    # site: a 2G/3G unit and a 4G eNodeB at every site, a gNodeB at 5G sites).
    five_g = sectors.loc[sectors["technology"] == "5G", "site_code"].nunique()
    units = len(sites) * (1 + LEGACY_UNITS_PER_SITE) + five_g
    assert abs(units - BTS_UNITS_REPORTED) <= 0.03 * BTS_UNITS_REPORTED
    counts = sites["operator"].value_counts()
    # the leader builds the most; the followers split the rest 30 : 25
    assert counts.idxmax() == LEADER and 1.0 < counts["452-02"] / counts["452-01"] < 1.4
    assert set(sites["status"]) == {"active", "planned", "down"}
    assert (sites["status"] == "active").mean() > 0.95
    assert 450 <= len(demo["sellers"]) <= 550
    assert 8 <= len(demo["events"]) <= 15
    assert set(demo["fibre_nodes"]["kind"]) == {"core", "pop", "splice", "site"}
    assert (demo["fibre_links"]["status"] == "planned").sum() >= 1


def test_sites_reach_the_commune_centres_and_villages(demo: Layers, out_dir: Path) -> None:
    """Every commune centre has a site of each operator, and the active sites reach (by the
    siting's path-loss rule) at least 98 % of villages, as the province states."""
    sites, communes = demo["sites"], demo["communes"]
    centres = sites[sites["name"].str.startswith("Trung tâm")]
    assert (centres.groupby("commune_code")["operator"].nunique() == 3).all()
    assert set(centres["commune_code"]) == set(communes["code"])
    with rasterio.open(out_dir / "dem.tif") as src:
        dem = Dem(src.read(1), src.transform)
    villages = demo["villages"]
    vx, vy = to_utm(villages.geometry.x, villages.geometry.y)
    reach = Reach(dem, pd.DataFrame({"x": vx, "y": vy}))
    active = sites[sites["status"] == "active"]
    reached = np.zeros(len(villages), dtype=bool)
    for x, y in zip(*to_utm(active.geometry.x, active.geometry.y), strict=True):
        reached[reach.villages(x, y)] = True
    assert reached.mean() >= 0.98


def test_layers_are_labelled_and_in_wgs84(demo: Layers) -> None:
    for name in GEO_LAYERS:
        assert demo[name].crs.to_epsg() == 4326, name
        assert demo[name]["synthetic"].dtype == bool, name
    assert not demo["communes"]["synthetic"].any()
    for name in ("villages", "sites", "sectors", "fibre_nodes", "fibre_links", "sellers"):
        assert demo[name]["synthetic"].all(), name
    assert demo["events"]["synthetic"].sum() == len(demo["events"]) - 1


def test_names_are_nfc_and_handles_ascii(demo: Layers) -> None:
    for name in ("communes", "villages", "sites", "fibre_nodes", "sellers", "events"):
        names = demo[name]["name"]
        assert (names == names.map(lambda s: unicodedata.normalize("NFC", s))).all(), name
    handles = demo["sellers"]["handle"]
    assert handles.str.fullmatch(r"@[a-z0-9]+").all()
    assert "Bình Lư" in set(demo["communes"]["name"])


def test_the_real_binh_lu_livestream_is_included(demo: Layers) -> None:
    events = demo["events"]
    (real,) = events[~events["synthetic"]].itertuples()
    assert real.commune_code == BINH_LU
    assert real.start.startswith("2025-11-04T") and real.start.endswith("+07:00")
    assert (real.duration_min, real.orders) == (240, 2500)
    assert pd.isna(real.views)
    commune = demo["communes"].set_index("code").loc[BINH_LU]
    centre = (commune.admin_center_lon, commune.admin_center_lat)
    assert (real.geometry.x, real.geometry.y) == pytest.approx(centre, abs=1e-6)


def test_dem_is_tagged_synthetic_in_utm(out_dir: Path) -> None:
    with rasterio.open(out_dir / "dem.tif") as src:
        assert src.crs.to_epsg() == 32648
        assert src.res == (COARSE_M, COARSE_M)
        assert src.tags()["SYNTHETIC"] == "yes"
        assert "seed 20251104" in src.tags()["DESCRIPTION"]
        assert src.nodata is not None and src.compression.name == "deflate" and src.profile["tiled"]
        heights = src.read(1, masked=True)
        # Real Lai Châu spans ~200-3,100 m; 500 m cells still show most of it.
        assert 150 < heights.min() < 600 and 2_500 < heights.max() < 3_150
        left, bottom, right, top = transform_bounds(src.crs, 4326, *src.bounds)
        assert left < 102.32 and bottom < 21.68 and right > 103.99 and top > 22.82


def test_same_seed_same_output_other_seed_differs(
    demo: Layers, out_dir: Path, tmp_path: Path
) -> None:
    again = build_demo(tmp_path / "again", dem_resolution_m=COARSE_M)
    for name, frame in demo.items():
        if isinstance(frame, gpd.GeoDataFrame):
            assert_geodataframe_equal(frame, again[name], check_less_precise=False)
        else:
            pd.testing.assert_frame_equal(frame, again[name])
    assert np.array_equal(_heights(out_dir), _heights(tmp_path / "again"))
    other = build_demo(tmp_path / "other", seed=7, dem_resolution_m=COARSE_M)
    assert not other["villages"].geometry.equals(demo["villages"].geometry)
    assert not other["sites"].geometry.equals(demo["sites"].geometry)
    assert other["villages"]["population"].sum() == PROVINCE_POPULATION
    assert not np.array_equal(_heights(out_dir), _heights(tmp_path / "other"))


@pytest.mark.parametrize("total,count", [(3_299, 7), (36_456, 73), (500, 12), (1_000, 1)])
def test_split_population_is_exact(total: int, count: int) -> None:
    people = split_population(total, count, np.random.default_rng(0))
    assert people.sum() == total and len(people) == count and (people >= 1).all()


@pytest.mark.slow
def test_full_30m_build(tmp_path: Path) -> None:
    layers = build_demo(tmp_path, dem_resolution_m=30.0)
    with rasterio.open(tmp_path / "dem.tif") as src:
        assert src.res == (30.0, 30.0)
        assert 5_500 < src.width < 6_200 and 4_100 < src.height < 4_600
        heights = src.read(1).astype(np.float32)
        assert 150 < heights.min() < 300 and 2_900 < heights.max() < 3_150
        # steep country: a large share of cells is steeper than 30°
        slope = np.degrees(np.arctan(np.hypot(*np.gradient(heights, 30.0))))
        assert (slope > 30).mean() > 0.25
    assert layers["villages"]["population"].sum() == PROVINCE_POPULATION
    sites = layers["sites"]
    # 2,021 BTS units = 2 per site (2G/3G + 4G) + 1 per 5G site
    assert 950 <= len(sites) <= 1_010
    assert (sites["backhaul_kind"] == "satellite").sum() > 0  # the remote far west
