"""Several provinces in one registry: `flask region init`, the area as the union of the
provinces, KPIs per province, and a second province that leaves the first's results alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import box, mapping

from registry import db, store
from registry.area import Area
from registry.models import Commune
from tests.conftest import point

#: Province B: two communes north of the test DEM's Bình Lư, > 15 km from province A's sites
#: and places (the coverage radius in the tests is 10 km), inside the test DEM.
B_COMMUNES = {
    "B01": ("Xã Một", box(103.70, 22.45, 103.74, 22.50)),
    "B02": ("Xã Hai", box(103.74, 22.45, 103.78, 22.50)),
}


def _boundaries(tmp_path: Path, communes: dict[str, tuple[str, Any]], **extra: Any) -> Path:
    """A GeoJSON of commune polygons whose fields have the file's own names (ma, ten)."""
    features = [
        {
            "type": "Feature",
            "properties": {"ma": code, "ten": name, "dan_so": 1000, **extra},
            "geometry": mapping(geom),
        }
        for code, (name, geom) in communes.items()
    ]
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return path


def _init_b(runner: Any, path: Path) -> Any:
    return runner.invoke(
        args=[
            "region", "init", "Tỉnh B", "--boundaries", str(path),
            "--code-field", "ma", "--name-field", "ten", "--population-field", "dan_so",
        ]
    )  # fmt: skip


def _communes(app: Any) -> dict[str, str]:
    with app.extensions["registry"]["sessions"]() as session:
        return {c.code: c.province for c in store.list_records(session, Commune)}


def test_area_is_the_union_of_the_provinces() -> None:
    area = Area.union([("A", box(0, 0, 1, 1)), ("B", box(2, 0, 3, 1))], margin_deg=0.0)
    assert area.name == "every province (A, B)"
    assert area.covers(shapely.Point(0.5, 0.5)) and area.covers(shapely.Point(2.5, 0.5))
    assert not area.covers(shapely.Point(1.5, 0.5))  # between the provinces, inside the bbox
    line = shapely.LineString([(0.5, 0.5), (2.5, 0.5)])
    assert not area.covers(line) and area.admits(line)  # a link between the provinces
    assert not area.admits(shapely.LineString([(1.2, 0.5), (1.8, 0.5)]))
    assert area.swapped_admits(shapely.Point(0.5, 2.5))


def test_records_outside_every_province_are_refused(loaded: Any, api: Any) -> None:
    site = {**loaded["sites"][0], "code": "VT-NEW"}
    # Inside Lai Châu's box, but in neither stored commune (Bình Lư, Tân Phong): refused.
    r = api.post("sites", json={"type": "Feature", "geometry": point(103.2, 22.1), "properties": {
        k: v for k, v in site.items() if k != "geometry"}})  # fmt: skip
    assert r.status_code == 400
    detail = r.json()["details"][0]
    assert detail["field"] == "geometry"
    assert "outside every province (Lai Châu)" in detail["reason"]
    assert "allow_outside_area" in detail["reason"]
    r = api.post("sites", json={"type": "Feature", "geometry": point(103.65, 22.36), "properties": {
        k: v for k, v in site.items() if k != "geometry"}})  # fmt: skip
    assert r.status_code == 201, r.text


def test_region_init_creates_the_province_all_or_nothing(
    app: Any, loaded: Any, runner: Any, tmp_path: Path
) -> None:
    path = _boundaries(tmp_path, B_COMMUNES)
    result = _init_b(runner, path)
    assert result.exit_code == 0, result.output
    assert "Province Tỉnh B: 2 communes" in result.output and "population 2,000" in result.output
    assert {c: p for c, p in _communes(app).items() if c.startswith("B")} == {
        "B01": "Tỉnh B",
        "B02": "Tỉnh B",
    }
    with app.extensions["registry"]["sessions"]() as session:
        assert store.provinces(session) == ["Lai Châu", "Tỉnh B"]
        b01 = store.get_record(session, Commune, "B01")
        assert b01.type == "Xã" and b01.area_km2 == pytest.approx(4.1 * 5.55, rel=0.05)

    again = _init_b(runner, path)
    assert again.exit_code == 1 and "already exists" in again.output


def test_region_init_reads_a_geopackage_layer(
    app: Any, loaded: Any, runner: Any, tmp_path: Path
) -> None:
    frame = gpd.GeoDataFrame(
        {"code": list(B_COMMUNES), "name": [n for n, _ in B_COMMUNES.values()]},
        geometry=[g for _, g in B_COMMUNES.values()],
        crs=4326,
    ).to_crs(32648)  # any CRS: read back as lon/lat
    path = tmp_path / "b.gpkg"
    frame.to_file(path, layer="xa", driver="GPKG")
    result = runner.invoke(args=["region", "init", "Tỉnh B", "--boundaries", str(path),
                                 "--layer", "xa"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 communes" in result.output and "population 0" in result.output
    with app.extensions["registry"]["sessions"]() as session:
        b02 = store.get_record(session, Commune, "B02")
        assert b02.geom.bounds == pytest.approx((103.74, 22.45, 103.78, 22.50), abs=1e-6)


@pytest.mark.parametrize(
    ("communes", "args", "expected"),
    [
        # overlaps Bình Lư (province A) by far more than the tolerance
        ({"C01": ("Chồng lấn", box(103.60, 22.30, 103.70, 22.40))}, [], "overlaps province Lai"),
        ({"C01": ("Mới", box(103.70, 22.45, 103.74, 22.50))}, ["--name-field", "nope"], "name"),
    ],
)
def test_bad_boundaries_store_nothing(
    app: Any,
    loaded: Any,
    runner: Any,
    tmp_path: Path,
    communes: dict[str, Any],
    args: list[str],
    expected: str,
) -> None:
    before = _communes(app)
    path = _boundaries(tmp_path, communes)
    result = runner.invoke(
        args=["region", "init", "Tỉnh C", "--boundaries", str(path), "--code-field", "ma",
              "--name-field", "ten", *args]
    )  # fmt: skip
    assert result.exit_code == 1
    assert expected in result.output
    assert _communes(app) == before


def _province_b_network(b01: str) -> dict[str, list[dict[str, Any]]]:
    sector = {
        "technology": "4G", "band": "B3", "freq_mhz": 1842.5, "bandwidth_mhz": 20,
        "mech_tilt_deg": 2, "elec_tilt_deg": 4, "h_beamwidth_deg": 65, "v_beamwidth_deg": 8,
        "gain_dbi": 17, "tx_power_dbm": 46, "height_m": 28,
    }  # fmt: skip
    return {
        "sites": [
            {
                "code": "B-SITE-1",
                "name": "Đồi B",
                "operator": "452-04",
                "commune_code": b01,
                "tower_height_m": 30,
                "status": "active",
                "backhaul_kind": "microwave",
                "backhaul_capacity_mbps": 311,
                "geometry": point(103.72, 22.48),
            }
        ],
        "sectors": [
            {**sector, "code": f"B-SITE-1-{k}", "site_code": "B-SITE-1", "azimuth_deg": az}
            for k, az in enumerate((0, 120, 240), start=1)
        ],
        "villages": [
            {
                "code": "B-V-1",
                "name": "Bản B",
                "commune_code": b01,
                "population": 250,
                "households": 50,
                "synthetic": True,
                "geometry": point(103.725, 22.47),
            }
        ],
    }


def test_a_second_province_leaves_the_first_unchanged(
    app: Any, loaded: Any, dem: Path, runner: Any, api: Any, tmp_path: Path
) -> None:
    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    kpis_a = api.get("readiness/kpis", params={"province": "Lai Châu"}).json()
    verdicts_a = api.get("readiness/sellers", params={"format": "json"}).json()

    assert _init_b(runner, _boundaries(tmp_path, B_COMMUNES)).exit_code == 0
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        store.import_layers(
            session, _province_b_network("B01"), actor="test", area_bbox=app.config["AREA_BBOX"]
        )
    result = runner.invoke(args=["coverage", "compute"])
    assert result.exit_code == 0, result.output

    assert api.get("readiness/kpis", params={"province": "Lai Châu"}).json() == kpis_a
    assert api.get("readiness/sellers", params={"format": "json"}).json() == verdicts_a
    kpis_b = api.get("readiness/kpis", params={"province": "Tỉnh B"}).json()["rows"]
    assert kpis_b[0]["commune"] == "Tỉnh B (tỉnh)"
    assert [r["commune_code"] for r in kpis_b] == ["province", "B01"]
    assert kpis_b[0]["villages_any_signal"] == 1.0  # its one village, 1 km from its site
    every = api.get("readiness/kpis").json()["rows"]
    assert every[0]["commune"] == "all provinces" and len(every) == 4
    missing = api.get("readiness/kpis", params={"province": "Nowhere"})
    assert missing.status_code == 404 and "Tỉnh B" in missing.json()["message"]
    page = app.test_client().get("/?province=Tỉnh B&lang=en").get_data(as_text=True)
    assert "Tỉnh B: livestream readiness" in page and "All provinces" in page
    client = app.test_client()
    whole = client.get("/map").get_data(as_text=True)
    only_b = client.get("/map?province=Tỉnh B").get_data(as_text=True)
    assert "B-SITE-1" in whole and "VT-BL-01" in whole
    assert "B-SITE-1" in only_b and "VT-BL-01" not in only_b
    assert client.get("/map?province=Nowhere").status_code == 404
