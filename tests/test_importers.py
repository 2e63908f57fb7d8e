"""Importers of open data: DEM tiles, OpenStreetMap extracts, population grids and nationwide
OpenCelliD extracts, from real-format files written in the test."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Point, box

from registry.area import Area
from registry.io import dem as dem_io
from registry.io.opencellid import CellScope, parse_opencellid
from registry.io.population import village_parts, village_populations
from registry.terrain import elevation_at, load_dem
from tests.test_io import OPENCELLID, snapshot, upload

FIXTURES = Path(__file__).parent / "fixtures"
OSM_FILE = FIXTURES / "osm" / "lai_chau_small.osm"
#: 3″ SRTM tile: 1201 × 1201 samples on whole-degree edges.
N3 = 1201


def plane_m(lon: Any, lat: Any) -> Any:
    """The terrain of the test tiles: a plane, which bilinear resampling keeps exactly."""
    return 400.0 + 1000.0 * (np.asarray(lon) - 103.0) + 500.0 * (np.asarray(lat) - 22.0)


def write_hgt(path: Path, voids: tuple[slice, slice] | None = None) -> Path:
    """A 3″ .hgt tile named after its south-west corner, in the SRTM byte layout."""
    name = path.name.split(".")[0]
    lat0 = int(name[1:3]) * (1 if name[0] == "N" else -1)
    lon0 = int(name[4:7]) * (1 if name[3] == "E" else -1)
    lat = lat0 + 1 - np.arange(N3)[:, None] / (N3 - 1)
    lon = lon0 + np.arange(N3)[None, :] / (N3 - 1)
    z = np.rint(plane_m(lon, lat)).astype(">i2")
    if voids is not None:
        z[voids] = -32768
    path.write_bytes(z.tobytes())
    return path


def write_geotiff_tile(path: Path, lon0: int, lat0: int) -> Path:
    """A Copernicus-GLO-30-like tile: float32 GeoTIFF in lon/lat, cell edges on the degree."""
    res = 1.0 / 1200
    lat = lat0 + 1 - (np.arange(1200)[:, None] + 0.5) * res
    lon = lon0 + (np.arange(1200)[None, :] + 0.5) * res
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=1200,
        height=1200,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(res, 0, lon0, 0, -res, lat0 + 1),
    ) as dst:
        dst.write(plane_m(lon, lat).astype(np.float32), 1)
    return path


def dem_at(path: Path, lon: float, lat: float) -> float:
    dem = load_dem(path, crs=None, voids="error")
    x, y = Transformer.from_crs("EPSG:4326", dem.crs, always_xy=True).transform(lon, lat)
    return float(elevation_at(dem, x, y))


# ---------------------------------------------------------------- DEM
def test_dem_import_from_hgt_fills_voids_and_writes_a_cog(
    runner: Any, app: Any, loaded: Any, tmp_path: Path
) -> None:
    data = Path(app.config["DATA_DIR"])
    (data / "loss-cache").mkdir(parents=True)
    (data / "loss-cache" / "old.npz").write_bytes(b"x")
    (data / "coverage").mkdir()
    (data / "coverage" / "current").write_text("20250101T000000-old")
    # voids at 22.35° N, 103.60-103.65° E: inside Bình Lư
    tile = write_hgt(tmp_path / "N22E103.hgt", voids=(slice(780, 790), slice(720, 780)))
    result = runner.invoke(args=["dem", "import", str(tile), "--resolution-m", "90"])
    assert result.exit_code == 0, result.output
    assert "in EPSG:32648" in result.output and "filled 600 void cells" in result.output
    path = data / "dem.tif"
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32648 and src.res == (90.0, 90.0)
        assert src.overviews(1) and src.profile["tiled"]
        assert src.tags()["source_tiles"] == "N22E103.hgt"
    for lon, lat in ((103.67, 22.34), (103.48, 22.36), (103.625, 22.345)):  # the last: a void
        assert dem_at(path, lon, lat) == pytest.approx(float(plane_m(lon, lat)), abs=1.5)
    assert not (data / "loss-cache").exists() and not (data / "coverage" / "current").exists()
    assert "run `flask coverage compute`" in result.output


def test_dem_import_of_zipped_hgt_and_geotiff_tiles(app: Any, loaded: Any, tmp_path: Path) -> None:
    from registry.services import dem as dem_service

    hgt = write_hgt(tmp_path / "N22E103.hgt")
    zipped = tmp_path / "N22E103.SRTMGL3.hgt.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(hgt, "N22E103.hgt")
    glo = write_geotiff_tile(tmp_path / "Copernicus_DSM_COG_30_N22_00_E103_00_DEM.tif", 103, 22)
    alos = tmp_path / "N020E100_N025E105.zip"  # AW3D30: the DSM beside its mask layer
    with zipfile.ZipFile(alos, "w") as archive:
        archive.write(glo, "N022E103/ALPSMLC30_N022E103_DSM.tif")
        archive.writestr("N022E103/ALPSMLC30_N022E103_MSK.tif", b"not read")
    for source in (zipped, glo, alos):
        with app.extensions["registry"]["sessions"]() as session:
            result = dem_service.import_dem(app.config, session, [source], resolution_m=120)
        assert result["crs"] == "EPSG:32648" and result["void_cells_filled"] == 0
        path = Path(result["path"])
        assert dem_at(path, 103.7, 22.3) == pytest.approx(float(plane_m(103.7, 22.3)), abs=1.5)


def test_dem_import_names_missing_tiles_and_bad_tiles_store_nothing(
    runner: Any, app: Any, loaded: Any, tmp_path: Path
) -> None:
    other = write_hgt(tmp_path / "N23E103.hgt")
    result = runner.invoke(args=["dem", "import", str(other)])
    assert result.exit_code != 0 and "missing N22E103" in result.output
    bad = tmp_path / "N22E103.hgt"
    bad.write_bytes(np.zeros((1000, 1000), dtype=">i2").tobytes())
    result = runner.invoke(args=["dem", "import", str(bad)])
    assert result.exit_code != 0 and "not an .hgt tile of a known size" in result.output
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    result = runner.invoke(args=["dem", "import", str(text)])
    assert result.exit_code != 0 and "notes.tif: not a GeoTIFF or .hgt tile" in result.output
    assert not (Path(app.config["DATA_DIR"]) / "dem.tif").exists()


def test_dem_without_area_takes_the_tiles_and_their_utm_zone(tmp_path: Path) -> None:
    tile = write_geotiff_tile(tmp_path / "ALPSMLC30_N021E108_DSM.tif", 108, 21)
    dem, report = dem_io.build_dem([tile], area=None, resolution_m=500, margin_m=0)
    assert report.crs == "EPSG:32649"  # 108.5° E is in zone 49
    assert dem.cell_size == (500.0, 500.0)
    assert dem_io.missing_tiles([box(103, 22, 104, 23)], box(103.5, 21.5, 104.5, 22.5)) == [
        "N21E103",
        "N21E104",
        "N22E104",
    ]


# ---------------------------------------------------------------- OpenStreetMap
def test_osm_import_takes_villages_fibre_towers_and_roads(
    runner: Any, app: Any, loaded: Any, api: Any
) -> None:
    result = runner.invoke(args=["import", str(OSM_FILE)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.splitlines()[-1])
    assert report["read"] == {
        "villages": 3,
        "fibre_nodes": 3,
        "fibre_links": 2,
        "sites": 2,
        "roads": 2,
    }
    assert report["skipped"] == {
        "places without a name": 1,
        "places outside the communes": 1,
        "telecom lines not of fibre": 1,
    }
    village = api.get("villages/OSM-N1001").json()["properties"]
    assert (village["name"], village["commune_code"]) == ("Bản Nà", "03390")
    assert api.get("villages/OSM-N1002").json()["properties"]["population"] == 240
    assert api.get("villages/OSM-N1003").json()["properties"]["commune_code"] == "03408"
    tower = api.get("sites/OSM-N2001").json()["properties"]
    assert (tower["operator"], tower["tower_height_m"], tower["commune_code"]) == (
        "999-99",
        42.0,
        "03390",
    )
    link = api.get("fibre_links/OSM-W4002").json()["properties"]
    assert (link["from_node_code"], link["to_node_code"]) == ("OSM-W4001-B", "OSM-W4002-B")
    roads = pyogrio.read_dataframe(Path(app.config["DATA_DIR"]) / "roads.gpkg")
    assert sorted(roads["highway"]) == ["primary", "track"]
    # the same extract again, here through the API: nothing changes
    before = snapshot(app)
    again = upload(api, OSM_FILE.read_bytes(), "lai_chau.osm").json()
    assert again["created"] == {} or not any(again["created"].values())
    assert snapshot(app) == before


def test_osm_without_places_is_refused(runner: Any, app: Any, loaded: Any, tmp_path: Path) -> None:
    path = tmp_path / "empty.osm"
    path.write_text(
        '<?xml version="1.0"?><osm version="0.6"><node id="1" lat="22.3" lon="103.6">'
        '<tag k="man_made" v="mast"/><tag k="tower:type" v="communication"/></node></osm>'
    )
    before = snapshot(app)
    result = runner.invoke(args=["import", str(path)])
    assert result.exit_code != 0 and "has no villages" in result.output
    assert snapshot(app) == before
    assert not (Path(app.config["DATA_DIR"]) / "roads.gpkg").exists()


# ---------------------------------------------------------------- population
def write_population(
    path: Path,
    value: float,
    *,
    nodata: float | None = -99999.0,
    west_north_size: tuple[float, float, float, float] = (103.35, 22.5, 0.5, 0.3),
) -> Path:
    """A WorldPop-like grid: ``value`` people per 3″ cell, lon/lat, over (west, north, width,
    height in degrees; default: both test communes)."""
    res = 1.0 / 1200
    west, north, width_deg, height_deg = west_north_size
    width, height = round(width_deg / res), round(height_deg / res)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(res, 0, west, 0, -res, north),
        nodata=nodata,
    ) as dst:
        dst.write(np.full((height, width), value, dtype=np.float32), 1)
    return path


def test_voronoi_parts_split_a_commune_between_its_villages(tmp_path: Path) -> None:
    communes = gpd.GeoDataFrame(
        {"code": ["C1"], "population": [1000]},
        geometry=[box(100.0, 10.0, 100.1, 10.1)],
        crs="EPSG:4326",
    )
    villages = gpd.GeoDataFrame(
        {"code": ["A", "B", "C"], "commune_code": ["C1"] * 3},
        geometry=[Point(100.025, 10.05), Point(100.075, 10.05), Point(100.075, 10.05)],
        crs="EPSG:4326",
    )
    parts = village_parts(villages, communes)
    assert parts.geometry.iloc[0].symmetric_difference(box(100.0, 10.0, 100.05, 10.1)).area < 1e-12
    assert list(parts["shared"]) == [1, 2, 2]
    res = 0.001
    grid = tmp_path / "pop.tif"
    with rasterio.open(
        grid,
        "w",
        driver="GTiff",
        width=100,
        height=100,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(res, 0, 100.0, 0, -res, 10.1),
    ) as dst:
        dst.write(np.ones((100, 100), dtype=np.float32), 1)
    assert village_populations(villages, communes, grid).populations == {
        "A": 5000,
        "B": 2500,
        "C": 2500,
    }
    scaled = village_populations(villages, communes, grid, scale_to_commune_totals=True)
    assert scaled.populations == {"A": 500, "B": 250, "C": 250}
    assert scaled.communes[0]["scale"] == 0.1


def test_villages_the_grid_does_not_cover_keep_their_population(tmp_path: Path) -> None:
    """A grid over one commune (of two) and half of the other: the villages whose part holds
    no grid value are left out and counted; a commune with such villages is not scaled."""
    communes = gpd.GeoDataFrame(
        {"code": ["C1", "C2"], "population": [1000, 800]},
        geometry=[box(100.0, 10.0, 100.1, 10.1), box(100.1, 10.0, 100.3, 10.1)],
        crs="EPSG:4326",
    )
    villages = gpd.GeoDataFrame(
        {"code": ["A", "B", "C"], "commune_code": ["C1", "C2", "C2"]},
        geometry=[Point(100.05, 10.05), Point(100.15, 10.05), Point(100.25, 10.05)],
        crs="EPSG:4326",
    )
    grid = tmp_path / "pop.tif"
    with rasterio.open(
        grid,
        "w",
        driver="GTiff",
        width=200,
        height=100,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(0.001, 0, 100.0, 0, -0.001, 10.1),  # 100.0–100.2: C1 and half of C2
    ) as dst:
        dst.write(np.ones((100, 200), dtype=np.float32), 1)
    result = village_populations(villages, communes, grid, scale_to_commune_totals=True)
    assert result.populations == {"A": 1000, "B": 10000}  # C1 scaled; C2 not (C is outside)
    assert result.outside_grid == {"C2": 1}
    assert [r["scale"] for r in result.communes] == [0.1, None]
    assert [r["villages_outside_grid"] for r in result.communes] == [0, 1]


def test_population_import_sets_villages_and_scales_to_communes(
    runner: Any, app: Any, loaded: Any, api: Any, tmp_path: Path
) -> None:
    assert runner.invoke(args=["import", str(OSM_FILE)]).exit_code == 0
    grid = write_population(tmp_path / "vnm_ppp_2020.tif", 2.0)
    result = runner.invoke(args=["population", "import", str(grid)])
    assert result.exit_code == 0, result.output
    villages = {
        f["properties"]["code"]: f["properties"] for f in api.get("villages").json()["features"]
    }
    binh_lu = [v["population"] for v in villages.values() if v["commune_code"] == "03390"]
    assert len(binh_lu) == 3 and all(p > 0 and p % 2 == 0 for p in binh_lu)
    result = runner.invoke(args=["population", "import", str(grid), "--scale-to-commune-totals"])
    assert result.exit_code == 0, result.output
    villages = {
        f["properties"]["code"]: f["properties"] for f in api.get("villages").json()["features"]
    }
    communes = {
        f["properties"]["code"]: f["properties"] for f in api.get("communes").json()["features"]
    }
    for code, commune in communes.items():
        total = sum(v["population"] for v in villages.values() if v["commune_code"] == code)
        assert total == commune["population"]
    assert "03390" in result.output
    # re-importing the OSM extract keeps the populations (they seed new villages only)
    again = json.loads(runner.invoke(args=["import", str(OSM_FILE)]).output.splitlines()[-1])
    assert again["unchanged"]["villages"] == 3 and not any(again["updated"].values())


@pytest.mark.parametrize("case", ["no values", "negative", "no crs"])
def test_bad_population_raster_stores_nothing(
    runner: Any, app: Any, loaded: Any, tmp_path: Path, case: str
) -> None:
    path = tmp_path / "grid.tif"
    if case == "no values":
        write_population(path, -99999.0)
    elif case == "negative":
        write_population(path, -3.0)
    else:
        with rasterio.open(
            path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32"
        ) as dst:
            dst.write(np.ones((4, 4), dtype=np.float32), 1)
    before = snapshot(app)
    result = runner.invoke(args=["population", "import", str(path)])
    assert result.exit_code != 0 and "not a population grid" in result.output
    assert snapshot(app) == before


# ---------------------------------------------------------------- OpenCelliD
NATIONWIDE = OPENCELLID + (
    "LTE,452,4,20001,5120001,0,105.8400,21.0300,1000,9,1,1600000000,1700000000,0\n"  # Hà Nội
    "LTE,460,0,30001,7680001,0,103.6800,22.3500,1000,2,1,1600000000,1700000000,0\n"  # MCC 460
    "LTE,452,4,oops,1,0,103.6,22.3,1,1,1,1,1,0\n"
)


def test_nationwide_opencellid_extract_skips_cells_by_reason(
    runner: Any, app: Any, api: Any, tmp_path: Path
) -> None:
    path = tmp_path / "452.csv.gz"
    path.write_bytes(gzip.compress(NATIONWIDE.encode()))
    plain = tmp_path / "452.csv"
    plain.write_text(NATIONWIDE)
    refused = runner.invoke(args=["import", str(plain), "--format", "opencellid"])
    assert refused.exit_code != 0 and "row 9" in refused.output
    result = runner.invoke(args=["import", str(path), "--skip-outside"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.splitlines()[-1])
    assert report["created"] == {"sites": 2, "sectors": 4}
    assert report["skipped"] == {
        "not 4G/5G": 1,
        "outside the area": 1,
        "wrong MCC": 1,
        "bad row": 1,
    }
    assert report["skipped_lines"]["outside the area"] == [7]
    again = upload(api, NATIONWIDE.encode(), "452.csv", format="opencellid", skip_outside="true")
    assert again.status_code == 200, again.text
    assert again.json()["unchanged"] == {"sites": 2, "sectors": 4}
    assert again.json()["skipped"]["wrong MCC"] == 1


def test_opencellid_scope_is_the_provinces_union_not_their_box() -> None:
    """Two provinces with a gap between them: a cell in the gap is outside the area, and so
    is an eNodeB whose cells lie one in each province (its site, at their mean, is in the
    gap); the cells inside are kept."""
    area = Area.union([("A", box(103.0, 22.0, 103.2, 22.2)), ("B", box(103.4, 22.0, 103.6, 22.2))])
    rows = (
        "LTE,452,4,1,256001,0,103.10,22.10,1,1,1,1,1,0\n"  # eNB 1000 in A
        "LTE,452,4,1,256002,0,103.11,22.10,1,1,1,1,1,0\n"
        "LTE,452,4,1,256257,0,103.30,22.10,1,1,1,1,1,0\n"  # eNB 1001 in the gap
        "LTE,452,4,1,256513,0,103.15,22.10,1,1,1,1,1,0\n"  # eNB 1002: one cell in A,
        "LTE,452,4,1,256514,0,103.45,22.10,1,1,1,1,1,0\n"  # one in B, mean in the gap
    )
    read = parse_opencellid(rows.encode(), scope=CellScope(area=area))
    assert [s["code"] for s in read.layers["sites"]] == ["OC-452-04-LTE-1-1000"]
    assert read.skipped == {"outside the area": 3}
    assert read.skipped_lines == {"outside the area": [3, 4, 5]}


# ---------------------------------------------------------------- fibre routes along roads
def test_fibre_routes_follow_the_roads_to_the_nearest_node_by_road() -> None:
    from shapely.geometry import LineString

    from registry.siting import Candidate, CostParams, Hub, road_network, site_costs
    from registry.terrain import synthetic_dem

    dem = synthetic_dem((50, 50), cell_size_m=200.0, origin_xy=(-1_000.0, 9_000.0))
    cost = CostParams()
    # an L-shaped road: 5 km north from beside node N1, then 5 km east (two OSM ways)
    roads = [LineString([(0, 100), (0, 5_100)]), LineString([(0, 5_100), (5_000, 5_100)])]
    n1 = Hub("N1", 0.0, 0.0)
    candidate = Candidate("K", 5_000.0, 5_300.0, 100.0, 0.0, "ridge")
    (got,) = site_costs(
        dem, [candidate], fibre_nodes=[n1], cost=cost, roads=road_network(roads, [n1])
    )
    route_m = 200 * cost.fibre_detour_factor + 10_000 + 100 * cost.fibre_detour_factor
    assert (got.kind, got.to) == ("fibre", "N1")
    assert got.backhaul_cost == pytest.approx(route_m / 1000 * cost.fibre_cost_per_km)
    # a second node, farther in a straight line from N1's road but near the road's end
    n2 = Hub("N2", 6_000.0, 5_400.0)
    network = road_network(roads, [n1, n2])
    (got,) = site_costs(dem, [candidate], fibre_nodes=[n1, n2], cost=cost, roads=network)
    route_m = (200 + float(np.hypot(1_000, 300))) * cost.fibre_detour_factor
    assert got.to == "N2"
    assert got.backhaul_cost == pytest.approx(route_m / 1000 * cost.fibre_cost_per_km)


def test_siting_routes_fibre_along_imported_roads(
    loaded: Any, dem: Path, runner: Any, app: Any
) -> None:
    from registry.services import siting as siting_service

    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    with app.extensions["registry"]["sessions"]() as session:
        straight = siting_service.siting_problem(app.config, session)
    assert straight.roads is None
    assert runner.invoke(args=["import", str(OSM_FILE)]).exit_code == 0
    with app.extensions["registry"]["sessions"]() as session:
        problem = siting_service.siting_problem(app.config, session)
        result = siting_service.run_siting(
            app.config,
            session,
            candidates=30,
            max_sites=2,
            budget_mvnd=None,
            spacing_km=2,
            candidate_spacing_km=1,
            method="greedy",
        )
    assert problem.roads is not None and len(problem.roads.xy) == 4  # nodes 3001/2/4/5
    assert np.isfinite(problem.roads.route_m).all()
    assert result["fibre_routes"] == "roads"


def test_dem_over_a_larger_area_keeps_the_cells_of_the_first(tmp_path: Path) -> None:
    """Grids snap to a lattice in the zone's metres, the mosaic to the tiles' cells, and
    each cell is sampled at its centre, so adding a province to the area leaves the first
    one's elevations as they were (same tiles, same UTM zone; up to float32 rounding)."""
    rng = np.random.default_rng(3)
    tile = tmp_path / "N22E103.hgt"
    tile.write_bytes(rng.integers(200, 2500, size=(N3, N3)).astype(">i2").tobytes())
    first = box(103.2, 22.2, 103.4, 22.4)
    both = first.union(box(103.6, 22.5, 103.8, 22.7))
    small, _ = dem_io.build_dem([tile], area=first, resolution_m=90, margin_m=1_000)
    large, _ = dem_io.build_dem([tile], area=both, resolution_m=90, margin_m=1_000)
    col = round((small.transform.c - large.transform.c) / 90)
    row = round((large.transform.f - small.transform.f) / 90)
    rows, cols = small.shape
    inner = (slice(2, rows - 2), slice(2, cols - 2))  # away from the first mosaic's edge
    window = large.elevation_m[row : row + rows, col : col + cols]
    np.testing.assert_allclose(window[inner], small.elevation_m[inner], rtol=0, atol=1e-3)
