"""Import and export: every format, all-or-nothing on bad files, idempotence and round trips."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from registry import create_app, db, io, store
from registry.models import BY_LAYER, LAYERS
from tests.conftest import sample_layers

STAMPS = ("created_at", "updated_at")


def snapshot(app: Any) -> dict[str, list[dict[str, Any]]]:
    """Every stored record (fields, version and geometry as WKB hex) by layer."""
    out = {}
    with app.extensions["registry"]["sessions"]() as session:
        for model in LAYERS:
            records = store.list_records(session, model)
            out[model.layer] = [
                {
                    **{
                        k: v
                        for k, v in io.writers.schemas.to_properties(r).items()
                        if k not in STAMPS
                    },
                    "geom": r.geom.wkb_hex if getattr(r, "geom", None) is not None else None,
                }
                for r in records
            ]
    return out


def geojson_bytes(layer: str, rows: list[dict[str, Any]]) -> bytes:
    features = [
        {
            "type": "Feature",
            "geometry": r.get("geometry"),
            "properties": {k: v for k, v in r.items() if k != "geometry"},
        }
        for r in rows
    ]
    return json.dumps(
        {"type": "FeatureCollection", "name": layer, "features": features}, ensure_ascii=False
    ).encode()


def upload(api: Any, data: bytes, filename: str, **params: str) -> Any:
    return api.post("import", files={"file": (filename, data)}, params=params)


OPENCELLID = (
    "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n"
    "LTE,452,4,10501,3073281,0,103.6790,22.3520,1000,12,1,1600000000,1700000000,0\n"
    "LTE,452,4,10501,3073282,0,103.6794,22.3524,1000,8,1,1600000000,1700000000,0\n"
    "LTE,452,4,10501,3073283,0,103.6792,22.3519,1000,5,1,1600000000,1700000000,0\n"
    "NR,452,4,10501,48771073,0,103.6791,22.3521,800,3,1,1600000000,1700000000,0\n"
    "GSM,452,4,105,3321,0,103.6790,22.3520,2000,30,1,1600000000,1700000000,0\n"
)


def test_geojson_import_per_layer(app: Any, api: Any) -> None:
    for layer, rows in sample_layers().items():
        r = upload(api, geojson_bytes(layer, rows), f"{layer}.geojson")
        assert r.status_code == 200, r.text
        assert r.json()["created"] == {layer: len(rows)}
    assert {k: len(v) for k, v in snapshot(app).items()} == {
        k: len(v) for k, v in sample_layers().items()
    }


def test_csv_import_with_lon_lat(app: Any, api: Any, loaded: Any) -> None:
    csv = (
        "code,name,commune_code,population,households,synthetic,lon,lat\n"
        "V-NEW-1,Bản Hồ Be,03390,250,51,true,103.66,22.34\n"
        "V-NEW-2,Bản Lao Chải,03390,180,,yes,103.67,22.36\n"
    )
    r = upload(api, csv.encode(), "villages.csv", layer="villages")
    assert r.status_code == 200, r.text
    assert r.json()["created"] == {"villages": 2}
    v = api.get("villages/V-NEW-2").json()
    assert v["geometry"]["coordinates"] == [103.67, 22.36]
    assert v["properties"]["households"] is None and v["properties"]["synthetic"] is True


def test_opencellid_import_groups_cells_into_sites(app: Any, api: Any) -> None:
    r = upload(api, OPENCELLID.encode(), "cells.csv", format="opencellid")
    assert r.status_code == 200, r.text
    assert r.json()["created"] == {"sites": 2, "sectors": 4}
    lte = api.get("sites/OC-452-04-LTE-10501-12005").json()
    assert lte["properties"]["operator"] == "452-04"
    assert lte["geometry"]["coordinates"] == pytest.approx([103.6792, 22.3521], abs=1e-6)
    sectors = api.get("sectors", params={"q": "OC-452-04-LTE"}).json()["features"]
    assert sorted(s["properties"]["azimuth_deg"] for s in sectors) == [0, 120, 240]
    assert {s["properties"]["cell_identity"] >> 8 for s in sectors} == {12005}  # ECI = eNB·2⁸+cell
    nr = api.get("sectors/OC-452-04-NR-10501-11907-1").json()["properties"]
    assert (nr["technology"], nr["band"], nr["bandwidth_mhz"]) == ("5G", "n41", 100)
    again = upload(api, OPENCELLID.encode(), "cells.csv", format="opencellid").json()
    assert again["unchanged"] == {"sites": 2, "sectors": 4}


MALFORMED = {
    "geojson-syntax": ("x.geojson", {}, b'{"type": "FeatureCollection", "features": [', "file"),
    "geojson-shape": ("x.geojson", {"layer": "sites"}, b'{"type": "Feature"}', "file"),
    "geojson-row": ("x.geojson", {}, None, "tower_height_m"),
    "csv-row": (
        "x.csv",
        {"layer": "villages"},
        b"code,name,commune_code,population,lon,lat\n"
        b"V-OK,Ban A,03390,10,103.66,22.34\nV-BAD,Ban B,03390,many,103.66,22.34\n",
        "population",
    ),
    "csv-columns": ("x.csv", {"layer": "villages"}, b"code,name\nV-1,Ban A,extra\n", "file"),
    "csv-no-layer": ("x.csv", {}, b"code,name\nV-1,Ban A\n", "layer"),
    "gpkg-garbage": ("x.gpkg", {}, b"SQLite format 3\x00 but not really", "file"),
    "opencellid-columns": ("x.csv", {"format": "opencellid"}, b"LTE,452,4,1\n", "file"),
    "opencellid-values": (
        "x.csv",
        {"format": "opencellid"},
        b"LTE,452,4,abc,1,0,103.6,22.3,1,1,1,1,1,0\n",
        "mcc/net/area/cell/lon/lat",
    ),
    "unknown-format": ("x.shp", {}, b"whatever", "format"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_file_leaves_registry_unchanged(
    app: Any, api: Any, loaded: Any, case: str
) -> None:
    filename, params, data, field = MALFORMED[case]
    if data is None:  # a good layer with one bad row in the middle
        rows = sample_layers()["sites"]
        rows[0]["tower_height_m"] = 99  # would be an update if accepted
        rows.insert(1, {**rows[1], "code": "VT-NEW", "tower_height_m": -5})
        data = geojson_bytes("sites", rows)
    before = snapshot(app)
    r = upload(api, data, filename, **params)
    assert r.status_code == 400, r.text
    assert field in {d["field"] for d in r.json()["details"]}
    assert snapshot(app) == before


def test_row_errors_carry_layer_and_row(app: Any, api: Any, loaded: Any) -> None:
    rows = sample_layers()["villages"] + [
        {
            "code": "V-X",
            "name": "Bản X",
            "commune_code": "00000",
            "population": 1,
            "geometry": {"type": "Point", "coordinates": [103.6, 22.3]},
        },
        {
            "code": "V-BL-1",
            "name": "dup",
            "commune_code": "03390",
            "population": 1,
            "geometry": {"type": "Point", "coordinates": [103.6, 22.3]},
        },
    ]
    details = upload(api, geojson_bytes("villages", rows), "v.geojson").json()["details"]
    assert {
        "layer": "villages",
        "row": 3,
        "field": "commune_code",
        "reason": "refers to '00000', which does not exist",
    } in details
    assert {"layer": "villages", "row": 4, "field": "code", "reason": "repeats row 1"} in details


def test_gpkg_with_a_bad_row_is_rejected_whole(
    app: Any, api: Any, loaded: Any, tmp_path: Path
) -> None:
    with app.extensions["registry"]["sessions"]() as session:
        path = io.export_gpkg(session, tmp_path / "r.gpkg")
    import pyogrio

    sites = pyogrio.read_dataframe(path, layer="sites")
    sites.loc[0, "status"] = "exploded"
    pyogrio.write_dataframe(sites, path, layer="sites", driver="GPKG")
    before = snapshot(app)
    r = upload(api, path.read_bytes(), "r.gpkg")
    assert r.status_code == 400
    assert {
        "layer": "sites",
        "row": 1,
        "field": "status",
        "reason": "must be one of planned, active, down",
    } in r.json()["details"]
    assert snapshot(app) == before


def test_reimport_is_idempotent(app: Any, api: Any, loaded: Any) -> None:
    before = snapshot(app)
    for layer, rows in sample_layers().items():
        r = upload(api, geojson_bytes(layer, rows), f"{layer}.geojson").json()
        assert r["unchanged"] == {layer: len(rows)} and r["updated"] == {layer: 0}
    assert snapshot(app) == before


def test_reimport_updates_changed_rows(app: Any, api: Any, loaded: Any) -> None:
    rows = sample_layers()["sites"]
    rows[0]["tower_height_m"] = 42
    r = upload(api, geojson_bytes("sites", rows), "sites.geojson").json()
    assert r["updated"] == {"sites": 1} and r["unchanged"] == {"sites": 1}
    site = api.get(f"sites/{rows[0]['code']}").json()["properties"]
    assert (site["tower_height_m"], site["version"]) == (42, 2)


def _fresh_app(db_url: str, tmp_path: Path) -> Any:
    """A second registry on a new database of the same backend."""
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    app = create_app({"DATABASE_URL": db_url})
    engine = app.extensions["registry"]["engine"]
    db.drop_schema(engine)
    db.upgrade(engine)
    return app


def test_gpkg_round_trip(app: Any, api: Any, loaded: Any, db_url: str, tmp_path: Path) -> None:
    exported = api.get("export", params={"format": "gpkg"})
    assert exported.status_code == 200
    assert exported.headers["Content-Type"] == "application/geopackage+sqlite3"
    before = snapshot(app)
    other = _fresh_app(db_url, tmp_path)
    with db.transaction(other.extensions["registry"]["sessions"]) as session:
        store.import_layers(
            session, io.read_layers(exported.content, fmt="gpkg"), actor="test", area_bbox=None
        )
    assert snapshot(other) == before


@pytest.mark.parametrize("fmt", ["geojson", "csv"])
def test_layer_round_trip(
    app: Any, api: Any, loaded: Any, db_url: str, tmp_path: Path, fmt: str
) -> None:
    files = {
        m.layer: api.get("export", params={"format": fmt, "layer": m.layer}).content for m in LAYERS
    }
    before = snapshot(app)
    other = _fresh_app(db_url, tmp_path)
    with db.transaction(other.extensions["registry"]["sessions"]) as session:
        layers = {}
        for layer, data in files.items():
            layers.update(io.read_layers(data, fmt=fmt, layer=layer))
        store.import_layers(session, layers, actor="test", area_bbox=None)
    assert snapshot(other) == before


def test_gpkg_of_one_layer(api: Any, loaded: Any, tmp_path: Path) -> None:
    import pyogrio

    r = api.get("export", params={"layer": "sites"})
    assert r.status_code == 200 and "filename=sites.gpkg" in r.headers["Content-Disposition"]
    (tmp_path / "sites.gpkg").write_bytes(r.content)
    assert [name for name, _kind in pyogrio.list_layers(tmp_path / "sites.gpkg")] == ["sites"]


def test_gpkg_opens_with_every_layer(app: Any, loaded: Any, tmp_path: Path) -> None:
    import pyogrio

    with app.extensions["registry"]["sessions"]() as session:
        path = io.export_gpkg(session, tmp_path / "r.gpkg")
    layers = dict(pyogrio.list_layers(path))
    assert set(layers) == set(BY_LAYER)
    assert layers["communes"] == "MultiPolygon" and layers["sectors"] is None
    info = pyogrio.read_info(path, layer="sites")
    assert info["crs"] == "EPSG:4326" and info["features"] == 2


#: "GPKG" as the SQLite application_id, and GeoPackage 1.2.0 as user_version (OGC 12-128r15).
GPKG_APPLICATION_ID = 0x47504B47
GPKG_1_2_USER_VERSION = 10200


def test_gpkg_is_version_1_2_with_millisecond_date_times(
    app: Any, loaded: Any, tmp_path: Path
) -> None:
    """GeoPackage 1.2, which Debian 12's GDAL 3.6 and QGIS read without a warning."""
    with app.extensions["registry"]["sessions"]() as session:
        path = io.export_gpkg(session, tmp_path / "r.gpkg")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == GPKG_APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == GPKG_1_2_USER_VERSION
        (start,) = conn.execute('SELECT start FROM events WHERE code = "EV-1"').fetchone()
    assert start == "2025-11-04T01:00:00.000Z"  # YYYY-MM-DDTHH:MM:SS.SSSZ (GeoPackage 1.2)
    ogrinfo = shutil.which("ogrinfo")
    if ogrinfo:  # the system's GDAL (Debian 12: 3.6), not the one inside pyogrio
        run = subprocess.run(
            [ogrinfo, "-ro", "-al", "-so", str(path)], capture_output=True, text=True, check=True
        )
        assert "Warning" not in run.stdout + run.stderr, run.stderr


def test_csv_export_defuses_formulas_and_opens_in_spreadsheets(loaded: Any, api: Any) -> None:
    assert (
        api.patch("sellers/SEL-1", json={"handle": '=HYPERLINK("x")', "version": 1}).status_code
        == 200
    )
    data = api.get("export", params={"format": "csv", "layer": "sellers"}).content
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
    assert "'=HYPERLINK" in data.decode("utf-8-sig") and "Lò Thị Mai" in data.decode("utf-8-sig")


def test_export_errors(api: Any) -> None:
    assert api.get("export", params={"format": "shp"}).status_code == 400
    r = api.get("export", params={"layer": "bogus"})  # was the whole GeoPackage
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "layer"
    r = api.get("export", params={"format": "csv"})
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "layer"
    assert api.post("import", data=b"").status_code == 400


def test_kmz_round_trip(app: Any, api: Any, loaded: Any, db_url: str, tmp_path: Path) -> None:
    """Every layer with geometry to Google Earth's KMZ and back, unchanged."""
    spatial = [m.layer for m in LAYERS if m.geometry_type is not None]
    files = {
        layer: api.get("export", params={"format": "kmz", "layer": layer}) for layer in spatial
    }
    assert all(
        r.headers["Content-Type"] == "application/vnd.google-earth.kmz" for r in files.values()
    )
    assert api.get("export", params={"format": "kmz", "layer": "sectors"}).status_code == 400
    before = {k: v for k, v in snapshot(app).items() if k in spatial}
    other = _fresh_app(db_url, tmp_path)
    with db.transaction(other.extensions["registry"]["sessions"]) as session:
        layers = {}
        for layer, r in files.items():
            layers.update(io.read_layers(r.content, filename=f"{layer}.kmz"))
        store.import_layers(session, layers, actor="test", area_bbox=None)
    after = {k: v for k, v in snapshot(other).items() if k in spatial}
    assert after == before
