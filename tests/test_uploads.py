"""Uploads: size limit, format checked from content, zip archives (KMZ, zipped shapefiles)
opened safely, and bad geometry named clearly."""

from __future__ import annotations

import io
import json
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.errors import ValidationError
from registry.io import read_layers
from registry.io.uploads import ZipLimits, extract_zip, sniff

VILLAGES = gpd.GeoDataFrame(
    {
        "code": ["V-Z1", "V-Z2"],
        "name": ["Bản Lả", "Thôn Nậm Cuổi"],
        "commune_code": ["03390"] * 2,
        "population": [120, 240],
    },
    geometry=[shapely.Point(103.67, 22.34), shapely.Point(103.68, 22.35)],
    crs=4326,
)


def zipped(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def shapefile_zip(tmp_path: Path, folder: str = "") -> bytes:
    """As a shapefile has it: field names cut to 10 characters (``commune_co``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        VILLAGES.to_file(tmp_path / "villages.shp", engine="pyogrio")
    return zipped({folder + p.name: p.read_bytes() for p in tmp_path.glob("villages.*")})


def kmz(tmp_path: Path) -> bytes:
    pyogrio.write_dataframe(VILLAGES, tmp_path / "v.kmz", driver="LIBKML", layer="villages")
    return (tmp_path / "v.kmz").read_bytes()


def test_content_is_sniffed_and_checked() -> None:
    assert sniff(b"SQLite format 3\x00...") == "gpkg"
    assert sniff(b"PK\x03\x04rest") == "zip"
    assert sniff(b'\xef\xbb\xbf  {"type": 1}') == "json"
    assert sniff("code,name\nV1,Bản\n".encode()) == "text"
    assert sniff(b"\x89PNG\r\n\x1a\n\x00\x00") == "binary"
    with pytest.raises(ValidationError, match="not gpkg") as e:
        read_layers(b"code,name\n", filename="villages.gpkg")
    assert "looks like text" in e.value.details[0]["reason"]
    with pytest.raises(ValidationError, match="not csv"):
        read_layers(b"\x89PNG\r\n\x1a\n\x00\x00\x00", filename="v.csv", layer="villages")
    # no suffix and no format: the content decides
    doc = {"type": "FeatureCollection", "name": "villages", "features": []}
    assert read_layers(json.dumps(doc).encode(), filename="upload") == {"villages": []}


def test_zipped_shapefile_and_kmz_are_read(tmp_path: Path) -> None:
    rows = read_layers(shapefile_zip(tmp_path, "nested/dir/"), filename="villages.zip")
    assert [r["name"] for r in rows["villages"]] == ["Bản Lả", "Thôn Nậm Cuổi"]
    rows = read_layers(kmz(tmp_path), filename="v.kmz")["villages"]
    assert [(r["code"], r["name"]) for r in rows] == [("V-Z1", "Bản Lả"), ("V-Z2", "Thôn Nậm Cuổi")]
    with pytest.raises(ValidationError, match="zipped shapefile"):
        read_layers(zipped({"readme.txt": b"hi"}), fmt="shapefile")


@pytest.mark.parametrize(
    "name", ["../evil.shp", "/etc/evil.shp", "C:/evil.shp", "a/../../evil.shp", "..\\evil.shp"]
)
def test_zip_members_cannot_escape(tmp_path: Path, name: str) -> None:
    inside = tmp_path / "inside"
    inside.mkdir()
    with pytest.raises(ValidationError, match="unsafe") as e:
        extract_zip(zipped({name: b"x"}), inside, (".shp",))
    assert "outside the archive" in e.value.details[0]["reason"]
    assert not list(tmp_path.rglob("evil.shp"))


def test_zip_symlinks_and_bombs_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        link = zipfile.ZipInfo("villages.shp")
        link.external_attr = 0o120777 << 16
        z.writestr(link, "/etc/passwd")
    with pytest.raises(ValidationError, match="unsafe"):
        extract_zip(buf.getvalue(), tmp_path, (".shp",))
    bomb = zipped({"villages.dbf": b"\x00" * (50 * 1024 * 1024)})  # 50 MiB -> ~50 KiB
    assert len(bomb) < 100_000
    with pytest.raises(ValidationError, match="unsafe") as e:
        extract_zip(bomb, tmp_path, (".dbf",))
    assert "zip bomb" in e.value.details[0]["reason"]
    with pytest.raises(ValidationError, match="unsafe") as e:
        extract_zip(
            zipped({f"{i}.shp": b"x" for i in range(5)}),
            tmp_path,
            (".shp",),
            ZipLimits(max_members=4),
        )
    assert "5 members" in e.value.details[0]["reason"]
    with pytest.raises(ValidationError, match="unsafe"):
        extract_zip(b"PK\x03\x04 truncated", tmp_path, (".shp",))


def test_api_uploads(api: Any, loaded: Any, tmp_path: Path, app: Any) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 200_000
    big = api.post(
        "import?layer=villages", data=b"x" * 300_000, headers={"Content-Type": "text/csv"}
    )
    assert big.status_code == 413 and big.json()["error"] == "Request Entity Too Large"
    r = api.post("import", files={"file": ("villages.zip", shapefile_zip(tmp_path))})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == {"villages": 2}
    assert api.get("villages/V-Z1").json()["properties"]["name"] == "Bản Lả"
    r = api.post("import", files={"file": ("photo.gpkg", b"\xff\xd8\xff\xe0JFIF")})
    assert r.status_code == 400 and "looks like binary" in r.json()["details"][0]["reason"]


def test_bad_geometry_in_uploads_is_named(api: Any, loaded: Any) -> None:
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[103.6, 22.3], [103.7, 22.4], [103.7, 22.3], [103.6, 22.4], [103.6, 22.3]]
        ],
    }
    doc = {
        "type": "FeatureCollection",
        "name": "communes",
        "features": [
            {
                "type": "Feature",
                "geometry": bowtie,
                "properties": {
                    "code": "99999",
                    "name": "Xã Nơ",
                    "province": "Lai Châu",
                    "type": "Xã",
                    "population": 1,
                    "area_km2": 1,
                },
            }
        ],
    }
    r = api.post("import", files={"file": ("c.geojson", json.dumps(doc).encode())})
    assert r.status_code == 400
    detail = r.json()["details"][0]
    assert detail["field"] == "geometry" and "self-intersection" in detail["reason"].lower()
    swapped = "code,name,commune_code,population,lon,lat\nV-S,Bản Ngược,03390,5,22.34,103.67\n"
    r = api.post("import?layer=villages", files={"file": ("v.csv", swapped.encode())})
    assert r.status_code == 400 and "look swapped" in r.json()["details"][0]["reason"]


@given(
    names=st.lists(
        st.text(alphabet=st.sampled_from("ab./\\:_-~ \u00e2"), min_size=1, max_size=12).map(
            lambda s: s + ".shp"
        ),
        min_size=1,
        max_size=4,
    )
)
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_member_name_lands_outside(tmp_path: Path, names: list[str]) -> None:
    """Whatever the member names, files are written only inside the folder, or refused."""
    inside = Path(tempfile.mkdtemp(dir=tmp_path))
    before = set(tmp_path.rglob("*"))
    try:
        written = extract_zip(zipped(dict.fromkeys(names, b"x")), inside, (".shp",))
    except ValidationError:
        written = []
    assert all(p.parent == inside for p in written)
    assert {p for p in set(tmp_path.rglob("*")) - before} <= {inside, *inside.iterdir()}


@given(data=st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_bytes_get_a_clear_answer(data: bytes) -> None:
    """Random uploads are read or refused with a ValidationError naming a field, never a crash."""
    for fmt in ("geojson", "csv", "gpkg", "kmz", "shapefile"):
        try:
            read_layers(data, fmt=fmt, layer="villages")
        except ValidationError as exc:
            assert exc.details and exc.details[0]["field"] in ("file", "layer", "format")
