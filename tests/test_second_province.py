"""End to end: a second province from open-data files, beside Lai Châu, on one registry.

Every file is written by the test in its real format: commune boundaries (GeoJSON), 1″ SRTM
tiles (big-endian int16, 3601 × 3601, void −32768), an OpenStreetMap XML extract, a
WorldPop-like population grid and a nationwide OpenCelliD CSV. The second province lies east of
the Lai Châu box (`LAI_CHAU_BBOX`), so every importer must take the area as the union of the
provinces, not the configured box.

The first province's results must not move. That holds when its DEM came from the same tiles:
the import's grid snaps to a lattice in the UTM zone's metres and samples each cell at its
centre, so the larger DEM has the first one's cells with the same elevations. (A DEM from
other data, e.g. the synthetic test DEM, is replaced terrain: its coverage changes, as it
should.) So the test first builds Lai Châu's DEM from its tile (replacing the `dem` fixture's
synthetic one; the fixture is there for the quick coverage settings), computes its coverage,
then adds the province and the neighbouring tile.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from shapely.geometry import box, mapping

from registry.terrain import load_dem
from tests.conftest import point
from tests.test_importers import write_population
from tests.test_io import snapshot

#: 1″ SRTM tile: 3601 × 3601 samples on whole-degree edges.
N1 = 3601
#: The second province: two communes east of the Lai Châu box (lon > 104.09), ~50 km from the
#: first province's sites (the tests' coverage radius is 10 km), in the same UTM zone (48N).
PROVINCE = "Tỉnh Mới"
COMMUNES = {
    "90001": ("Xã Đông", box(104.15, 22.30, 104.20, 22.36)),
    "90002": ("Xã Tây", box(104.20, 22.30, 104.25, 22.36)),
}


def terrain_m(lon: Any, lat: Any) -> Any:
    """Hills 300–1,700 m high, ~15 km apart."""
    lon, lat = np.asarray(lon), np.asarray(lat)
    return 1000.0 + 500.0 * np.sin(lon * 40.0) * np.cos(lat * 45.0) + 200.0 * np.sin(lat * 90.0)


def write_hgt(path: Path, voids: tuple[slice, slice] | None = None) -> Path:
    """A 1″ .hgt tile named after its south-west corner, in the SRTM byte layout."""
    name = path.name.split(".")[0]
    lat0, lon0 = int(name[1:3]), int(name[4:7])
    lat = lat0 + 1 - np.arange(N1)[:, None] / (N1 - 1)
    lon = lon0 + np.arange(N1)[None, :] / (N1 - 1)
    z = np.rint(terrain_m(lon, lat)).astype(">i2")
    if voids is not None:
        z[voids] = -32768
    path.write_bytes(z.tobytes())
    return path


def write_boundaries(path: Path) -> Path:
    features = [
        {
            "type": "Feature",
            "properties": {"ma_xa": code, "ten_xa": name, "dan_so": 3000},
            "geometry": mapping(geom),
        }
        for code, (name, geom) in COMMUNES.items()
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return path


OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="registry tests">
  <node id="71" lat="22.3300" lon="104.1700" version="1">
    <tag k="place" v="village"/><tag k="name" v="Ban Dong"/><tag k="name:vi" v="Bản Đông"/>
  </node>
  <node id="72" lat="22.3350" lon="104.2300" version="1">
    <tag k="place" v="hamlet"/><tag k="name" v="Nà Tây"/>
  </node>
  <node id="73" lat="22.4500" lon="104.4000" version="1">
    <tag k="place" v="village"/><tag k="name" v="Ngoài Tỉnh"/>
  </node>
  <node id="81" lat="22.3320" lon="104.1800" version="1">
    <tag k="man_made" v="mast"/><tag k="tower:type" v="communication"/><tag k="height" v="36"/>
  </node>
  <node id="91" lat="22.3100" lon="104.1600" version="1"/>
  <node id="92" lat="22.3200" lon="104.2000" version="1"/>
  <node id="93" lat="22.3400" lon="104.2400" version="1"/>
  <way id="95" version="1">
    <nd ref="91"/><nd ref="92"/><nd ref="93"/>
    <tag k="telecom" v="line"/><tag k="telecom:medium" v="fibre"/>
  </way>
  <node id="94" lat="22.4000" lon="104.4000" version="1"/>
  <way id="97" version="1">
    <nd ref="93"/><nd ref="94"/>
    <tag k="telecom" v="line"/>
  </way>
  <way id="96" version="1">
    <nd ref="91"/><nd ref="92"/>
    <tag k="highway" v="tertiary"/>
  </way>
</osm>
"""

#: OpenCelliD rows: one eNodeB (two cells) in each commune of the new province; cells in Hà Nội,
#: in the Lai Châu box but outside every province, of another MCC, and a GSM cell.
CELLS = (
    "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n"
    "LTE,452,4,9001,2304001,0,104.1750,22.3310,1000,9,1,1600000000,1700000000,0\n"
    "LTE,452,4,9001,2304002,0,104.1752,22.3312,1000,9,1,1600000000,1700000000,0\n"
    "LTE,452,4,9001,2304257,0,104.2290,22.3340,1000,9,1,1600000000,1700000000,0\n"
    "LTE,452,4,9001,2304258,0,104.2292,22.3342,1000,9,1,1600000000,1700000000,0\n"
    "LTE,452,4,20001,5120001,0,105.8400,21.0300,1000,9,1,1600000000,1700000000,0\n"
    "LTE,452,4,9002,2560001,0,102.5000,22.0000,1000,9,1,1600000000,1700000000,0\n"
    "LTE,460,0,30001,7680001,0,104.1800,22.3300,1000,2,1,1600000000,1700000000,0\n"
    "GSM,452,4,9001,101,0,104.1800,22.3300,1000,9,1,1600000000,1700000000,0\n"
)


def flask(runner: Any, *args: str) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return str(result.output)


def last_json(output: str) -> dict[str, Any]:
    return dict(json.loads(output.strip().splitlines()[-1]))


def verdicts(api: Any) -> dict[str, dict[str, Any]]:
    rows = api.get("readiness/sellers", params={"format": "json"}).json()
    return {r["code"]: r for r in rows}


def test_a_second_province_from_open_data_leaves_the_first_unchanged(
    app: Any, loaded: Any, dem: Path, runner: Any, api: Any, tmp_path: Path
) -> None:
    # Lai Châu on the DEM of its own tile, with its coverage: the registry before
    lai_chau_tile = write_hgt(tmp_path / "N22E103.hgt")
    flask(runner, "dem", "import", str(lai_chau_tile), "--resolution-m", "250")
    flask(runner, "coverage", "compute")
    kpis_before = api.get("readiness/kpis", params={"province": "Lai Châu"}).json()
    verdicts_before = verdicts(api)
    assert set(verdicts_before) == {"SEL-1"}
    assert verdicts_before["SEL-1"]["site_code"] == "VT-BL-01"  # served: the check means much
    dem_before = load_dem(dem, crs=None, voids="error")

    # boundaries
    out = flask(
        runner,
        "region", "init", PROVINCE, "--boundaries", str(write_boundaries(tmp_path / "b.geojson")),
        "--code-field", "ma_xa", "--name-field", "ten_xa", "--population-field", "dan_so",
    )  # fmt: skip
    assert f"Province {PROVINCE}: 2 communes" in out

    # DEM tiles over both provinces (the area is every province's communes)
    new_tile = write_hgt(tmp_path / "N22E104.hgt", voids=(slice(2300, 2310), slice(600, 640)))
    refused = runner.invoke(args=["dem", "import", str(lai_chau_tile), "--resolution-m", "250"])
    assert refused.exit_code != 0 and "missing N22E104" in refused.output
    out = flask(runner, "dem", "import", str(lai_chau_tile), str(new_tile), "--resolution-m", "250")
    assert "in EPSG:32648 from 2 tile(s); filled 400 void cells" in out
    # the larger DEM holds the first one's cells, with the same elevations
    dem_after = load_dem(dem, crs=None, voids="error")
    col = round((dem_before.transform.c - dem_after.transform.c) / 250)
    row = round((dem_after.transform.f - dem_before.transform.f) / 250)
    rows, cols = dem_before.shape
    assert dem_after.shape[1] > cols + 100  # ~50 km further east
    window = dem_after.elevation_m[row : row + rows, col : col + cols]
    np.testing.assert_allclose(window, dem_before.elevation_m, rtol=0, atol=1e-3)

    # OpenStreetMap: villages, a telecom line, a communication tower, a road
    osm_file = tmp_path / "tinh_moi.osm"
    osm_file.write_text(OSM, "utf-8")
    report = last_json(flask(runner, "import", str(osm_file)))
    assert report["read"] == {
        "villages": 2,
        "fibre_nodes": 2,
        "fibre_links": 1,
        "sites": 1,
        "roads": 1,
    }
    assert report["skipped"] == {
        "places outside the communes": 1,
        "telecom lines with an end outside the communes": 1,  # way 97, on to the east
    }
    villages = {
        f["properties"]["code"]: f["properties"] for f in api.get("villages").json()["features"]
    }
    assert villages["OSM-N71"]["name"] == "Bản Đông"
    assert villages["OSM-N71"]["commune_code"] == "90001"
    assert villages["OSM-N72"]["commune_code"] == "90002"
    tower = api.get("sites/OSM-N81").json()["properties"]
    assert (tower["operator"], tower["tower_height_m"]) == ("999-99", 36.0)

    # population grid over the new province only: Lai Châu's villages keep theirs
    out = flask(
        runner,
        "population",
        "import",
        str(
            write_population(tmp_path / "pop.tif", 2.0, west_north_size=(104.10, 22.40, 0.2, 0.15))
        ),
    )
    assert last_json(out)["updated"] == {"villages": 2}
    villages = {
        f["properties"]["code"]: f["properties"] for f in api.get("villages").json()["features"]
    }
    assert (villages["V-BL-1"]["population"], villages["V-TP-1"]["population"]) == (420, 310)
    # each village's Voronoi part of a 0.05° × 0.06° commune: ~ 3,600 cells of 2 people
    assert 6_000 < villages["OSM-N71"]["population"] < 9_000
    assert 6_000 < villages["OSM-N72"]["population"] < 9_000

    # a nationwide OpenCelliD extract: the new province's cells kept, the others skipped
    cells = tmp_path / "452.csv"
    cells.write_text(CELLS)
    report = last_json(flask(runner, "import", str(cells), "--skip-outside"))
    assert report["created"] == {"sites": 2, "sectors": 4}
    assert report["skipped"] == {"outside the area": 2, "wrong MCC": 1, "not 4G/5G": 1}
    assert report["skipped_lines"]["outside the area"] == [6, 7]

    # sellers in the new province, through the API
    for code, village, lon, lat in (
        ("SEL-M1", "OSM-N71", 104.1705, 22.3305),
        ("SEL-M2", "OSM-N72", 104.2305, 22.3345),
    ):
        created = api.post(
            "sellers",
            json={
                "type": "Feature",
                "geometry": point(lon, lat),
                "properties": {
                    "code": code,
                    "name": f"Người bán {code}",
                    "village_code": village,
                    "products": "Chè",
                    "platform": "TikTok Shop",
                    "phone_tech": "4G",
                    "wanted_class": "hd_live",
                },
            },
        )
        assert created.status_code == 201, created.text

    # OpenCelliD and OSM say where cells are, not how they reach the core network: their sites
    # are fibre-fed without a fibre node, so cut off, and transmit nothing
    flask(runner, "coverage", "compute")
    cut_off = verdicts(api)
    for code, site in (
        ("SEL-M1", "OC-452-04-LTE-9001-9000"),
        ("SEL-M2", "OC-452-04-LTE-9001-9001"),
    ):
        assert cut_off[code]["service_class"] == "none"
        assert cut_off[code]["limiting_factor"] == "backhaul"
        assert cut_off[code]["reason"] == {"code": "backhaul_cut", "params": {"site": site}}
    # the planner's step: the telecom line's west end is the province's core node, and the
    # OpenCelliD sites hang on its ends
    assert api.patch("fibre_nodes/OSM-W95-A", json={"kind": "core", "version": 1}).ok
    for site, node in (
        ("OC-452-04-LTE-9001-9000", "OSM-W95-A"),
        ("OC-452-04-LTE-9001-9001", "OSM-W95-B"),
    ):
        assert api.patch(f"sites/{site}", json={"fibre_node_code": node, "version": 1}).ok
    flask(runner, "coverage", "compute")

    after = verdicts(api)
    assert set(after) == {"SEL-1", "SEL-M1", "SEL-M2"}
    assert after["SEL-1"] == verdicts_before["SEL-1"]
    for code, site in (
        ("SEL-M1", "OC-452-04-LTE-9001-9000"),
        ("SEL-M2", "OC-452-04-LTE-9001-9001"),
    ):
        # a few hundred metres from its commune's OpenCelliD site, on its fibre
        assert after[code]["site_code"] == site, after[code]
        assert after[code]["backhaul_kind"] == "fibre"
        assert after[code]["service_class"] == "fullhd_live", after[code]
        assert after[code]["meets_wanted"] and after[code]["reason"]["code"] == "meets"
    assert api.get("readiness/kpis", params={"province": "Lai Châu"}).json() == kpis_before
    rows = api.get("readiness/kpis", params={"province": PROVINCE}).json()["rows"]
    assert [r["commune_code"] for r in rows] == ["province", "90001", "90002"]
    assert rows[0]["villages_any_signal"] == 1.0


def test_bad_open_data_files_store_nothing_beside_a_province(
    app: Any, loaded: Any, runner: Any, tmp_path: Path
) -> None:
    """The issue's bad files, against a registry that holds a province: each gets a clear
    error naming what is wrong, and the registry (and its DEM) stay as they were."""
    before = snapshot(app)
    cases: list[tuple[Path, list[str], str]] = []

    tile = tmp_path / "N22E103.hgt"
    tile.write_bytes(np.zeros((1000, 1000), dtype=">i2").tobytes())  # neither 1″ nor 3″
    cases.append((tile, ["dem", "import"], "not an .hgt tile of a known size"))

    no_places = tmp_path / "roads.osm"
    no_places.write_text(
        OSM.replace('k="place"', 'k="landuse"'), "utf-8"
    )  # the same extract, its places retagged
    cases.append((no_places, ["import"], "the OpenStreetMap file has no villages"))

    raster = tmp_path / "empty.tif"
    with rasterio.open(
        raster,
        "w",
        driver="GTiff",
        width=600,
        height=360,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(1 / 1200, 0, 103.35, 0, -1 / 1200, 22.5),
        nodata=-99999.0,
    ) as dst:
        dst.write(np.full((360, 600), -99999.0, dtype=np.float32), 1)
    cases.append((raster, ["population", "import"], "no population value over the communes"))

    overlapping = tmp_path / "overlap.geojson"
    overlapping.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": "99001", "name": "Chồng Lấn"},
                        "geometry": mapping(box(103.60, 22.30, 103.70, 22.40)),  # on Bình Lư
                    }
                ],
            }
        ),
        "utf-8",
    )
    cases.append(
        (overlapping, ["region", "init", "Tỉnh Chồng", "--boundaries"], "overlaps province Lai")
    )

    for path, command, message in cases:
        result = runner.invoke(args=[*command, str(path)])
        assert result.exit_code != 0 and message in result.output, (command, result.output)
        assert snapshot(app) == before, command
    assert not (Path(app.config["DATA_DIR"]) / "dem.tif").exists()
    assert not (Path(app.config["DATA_DIR"]) / "roads.gpkg").exists()
