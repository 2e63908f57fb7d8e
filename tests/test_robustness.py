"""Regressions from review: races give 409 (never 500), hostile input gives 400, imports only
change what they carry, and maps escape what users typed."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry import db, store
from registry.errors import ConflictError
from registry.models import Site
from tests.conftest import sample_layers
from tests.test_io import OPENCELLID, snapshot, upload


def test_two_editors_race_one_wins_one_gets_409(loaded: Any, app: Any) -> None:
    factory = app.extensions["registry"]["sessions"]
    with factory() as first, factory() as second:
        a = store.get_record(first, Site, "VT-BL-01")
        b = store.get_record(second, Site, "VT-BL-01")
        assert a.version == b.version == 1
        store.update_record(
            first,
            Site,
            "VT-BL-01",
            {"tower_height_m": 41},
            expected_version=1,
            actor="a",
            area_bbox=None,
        )
        first.commit()
        with pytest.raises(ConflictError) as exc:
            store.update_record(
                second,
                Site,
                "VT-BL-01",
                {"tower_height_m": 42},
                expected_version=1,
                actor="b",
                area_bbox=None,
            )
            second.commit()
        assert exc.value.current["properties"]["tower_height_m"] == 41
        assert exc.value.current["properties"]["version"] == 2


def test_concurrent_http_edits_never_fail_with_500(loaded: Any, api: Any) -> None:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def edit(thread: int) -> None:
        for attempt in range(5):
            version = api.get("sites/VT-BL-01").json()["properties"]["version"]
            height = 31 + thread + attempt / 10  # every edit a real change
            r = api.patch("sites/VT-BL-01", json={"tower_height_m": height, "version": version})
            with lock:
                statuses[r.status_code] += 1

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {200, 409} and statuses[200] >= 1
    final = api.get("sites/VT-BL-01").json()["properties"]
    assert final["version"] == 1 + statuses[200]  # every accepted edit counted, none lost


@pytest.mark.parametrize(
    ("layer", "change", "field"),
    [
        ("villages", {"population": "1" + "0" * 400}, "population"),
        ("villages", {"population": 1e308 * 10}, None),  # JSON Infinity: refused by the parser
        ("events", {"orders": 2**40}, "orders"),
        ("events", {"views": 2**63}, "views"),
        ("events", {"start": "0001-01-01T00:00:00"}, "start"),
        ("events", {"start": "9999-12-31T23:00:00-05:00"}, "start"),
        ("villages", {"name": "a\u0000b"}, "name"),
        ("villages", {"name": "a\ud800b"}, "name"),
        ("sites", {"operator": "٤٥٢-٠٤"}, "operator"),
        ("sellers", {"products": "chè;" * 2_500_000}, "products"),  # 10 MB
        ("communes", {"before_merger": "x" * 10_000_000}, "before_merger"),
        ("villages", {"name": "Bản \u202eàN"}, "name"),  # right-to-left override
        ("villages", {"name": "Bản\u200bNà"}, "name"),  # zero-width space
        ("sellers", {"name": "Lò\u200dMai"}, "name"),  # zero-width joiner
        ("sites", {"name": "Trạm\u2028hai"}, "name"),  # line separator
    ],
)
def test_hostile_values_are_400(
    loaded: Any, api: Any, layer: str, change: dict[str, Any], field: str | None
) -> None:
    row = {**sample_layers()[layer][0], "code": "NEW-1", **change}
    props = {k: v for k, v in row.items() if k != "geometry"}
    body = json.dumps({"type": "Feature", "geometry": row.get("geometry"), "properties": props})
    r = api.post(layer, data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    if field:
        assert field in {d["field"] for d in r.json()["details"]}


def test_odd_but_valid_values_are_stored(loaded: Any, api: Any) -> None:
    row = {
        **sample_layers()["villages"][0],
        "code": "V-SS",
        "name": "ß" * 200,
        "geometry": {"type": "Point", "coordinates": [103.6, 22.3, 5.0]},
    }
    props = {k: v for k, v in row.items() if k != "geometry"}
    r = api.post(
        "villages", json={"type": "Feature", "geometry": row["geometry"], "properties": props}
    )
    assert r.status_code == 201, r.text
    assert r.json()["geometry"]["coordinates"] == [103.6, 22.3]  # Z dropped
    assert api.get("villages", params={"q": "ss"}).json()["numberMatched"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "sites/a%00b",
        "sites?q=a%00b",
        "fibre_nodes?commune=%00",
        "sites?bbox=nan,nan,nan,nan",
        "sites?bbox=0,-100,1,1",
    ],
)
def test_hostile_urls_are_400(loaded: Any, api: Any, path: str) -> None:
    r = api.http.get(f"{api.base}/api/v1/{path}", timeout=30)
    assert r.status_code == 400, r.text


def test_hostile_bodies_and_versions(loaded: Any, api: Any) -> None:
    deep = "[" * 100_000
    assert (
        api.post("sites", data=deep, headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert upload(api, deep.encode(), "x.geojson").status_code == 400
    named = b'{"type":"FeatureCollection","name":["x"],"features":[]}'
    assert upload(api, named, "x.geojson").status_code == 400
    for version in ("1e999", True, 1.5, "-1"):
        body = {"tower_height_m": 31, "version": version}
        assert api.patch("sites/VT-BL-01", json=body).status_code == 400, version
    page = api.get("sectors", params={"limit": 1, "layer": "x", "endpoint": "y"})
    assert page.status_code == 200
    assert "layer=x" in next(link["href"] for link in page.json()["links"] if link["rel"] == "next")


def _ring(vertices: int) -> list[list[float]]:
    """A closed ring of ``vertices`` points on a 5 km circle in Bình Lư."""
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    ring = np.column_stack([103.6 + 0.05 * np.cos(angles), 22.35 + 0.05 * np.sin(angles)])
    return [*ring.round(7).tolist(), ring[0].round(7).tolist()]


def test_limits_on_text_and_vertices_hold_on_api_pages_and_imports(
    loaded: Any, api: Any, client: Any
) -> None:
    commune = {**sample_layers()["communes"][0], "code": "99999"}
    commune["geometry"] = {"type": "Polygon", "coordinates": [_ring(1_000_000)]}
    r = api.post("communes", json=commune)
    assert r.status_code == 400
    assert r.json()["details"] == [
        {"field": "geometry", "reason": "has 1000001 vertices; communes take at most 100000"}
    ]
    commune["geometry"]["coordinates"] = [_ring(100_000 - 1)]
    assert api.post("communes", json=commune).status_code == 201
    link = {**sample_layers()["fibre_links"][0], "code": "FL-LONG"}
    link["geometry"] = {"type": "LineString", "coordinates": _ring(30_000)}
    r = upload(
        api,
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": link.pop("geometry"),
                        "properties": link,
                    }
                ],
            }
        ).encode(),
        "fibre.geojson",
        layer="fibre_links",
    )
    assert r.status_code == 400
    assert "take at most 20000" in json.dumps(r.json()["details"])
    seller = {**sample_layers()["sellers"][0], "code": "SEL-LONG", "products": "x" * 2_001}
    r = client.post(
        "/records/sellers/new?lang=en",
        data={k: v for k, v in seller.items() if k != "geometry"} | {"lon": "103.6", "lat": "22.3"},
    )
    assert r.status_code == 400 and "longer than 2000 characters" in r.get_data(as_text=True)
    properties = api.get("openapi.json").json()["components"]["schemas"]
    assert properties["sellers"]["properties"]["products"]["maxLength"] == 2_000
    assert properties["communes"]["properties"]["before_merger"]["anyOf"][0]["maxLength"] == 1_000


def test_next_with_line_breaks_and_deeply_nested_json_are_400(
    loaded: Any, api: Any, app: Any
) -> None:
    client = app.test_client()
    for url in ("/lang/en?next=/records%0d%0aSet-Cookie:%20x=1", "/login?next=/%0d%0ax"):
        r = client.get(url)
        assert r.status_code == 400, url
        assert "next" in r.get_data(as_text=True)
    nested = '{"x": ' * 1_000 + "{}" + "}" * 1_000  # too deep for json.dumps to write
    deep = '{"changes": [{"action": "add", "layer": "sites", "data": ' + nested + "}]}"
    r = api.put("scenarios/deep", data=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["details"] == [{"field": "body", "reason": "nests deeper than 32 levels"}]


def test_import_keeps_fields_the_file_does_not_carry(loaded: Any, api: Any) -> None:
    csv = "code,name,commune_code,population,lon,lat\nV-BL-1,Bản Nà Khum,03390,430,103.672,22.345\n"
    r = upload(api, csv.encode(), "v.csv", layer="villages")
    assert r.json()["updated"] == {"villages": 1}
    village = api.get("villages/V-BL-1").json()["properties"]
    assert (village["population"], village["households"], village["synthetic"]) == (430, 88, True)


def test_import_refuses_rows_exported_before_a_newer_edit(loaded: Any, api: Any, app: Any) -> None:
    exported = api.get("export", params={"format": "geojson", "layer": "sites"}).content
    assert api.patch("sites/VT-BL-01", json={"tower_height_m": 50, "version": 1}).status_code == 200
    before = snapshot(app)
    r = upload(api, exported, "sites.geojson")
    assert r.status_code == 400
    assert any(d["field"] == "version" and "version 2" in d["reason"] for d in r.json()["details"])
    assert snapshot(app) == before


def test_opencellid_reimport_keeps_planners_edits(app: Any, api: Any) -> None:
    upload(api, OPENCELLID.encode(), "cells.csv", format="opencellid")
    code = "OC-452-04-LTE-10501-12005"
    assert (
        api.patch(
            f"sites/{code}", json={"tower_height_m": 45, "status": "down", "version": 1}
        ).status_code
        == 200
    )
    # raising the tower moved the sector's antenna with it (version 2)
    assert api.patch(f"sectors/{code}-1", json={"azimuth_deg": 77, "version": 2}).status_code == 200
    again = upload(api, OPENCELLID.encode(), "cells.csv", format="opencellid").json()
    assert again["unchanged"] == {"sites": 2, "sectors": 4}
    site = api.get(f"sites/{code}").json()["properties"]
    assert (site["tower_height_m"], site["status"]) == (45, "down")
    assert api.get(f"sectors/{code}-1").json()["properties"]["azimuth_deg"] == 77


def test_map_escapes_what_users_typed(loaded: Any, api: Any, runner: Any, tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)>"
    assert api.patch("sellers/SEL-1", json={"name": evil, "version": 1}).status_code == 200
    out = tmp_path / "m.html"
    assert runner.invoke(args=["render-map", "--out", str(out)]).exit_code == 0
    html = out.read_text("utf-8")
    # The popup JSON carries the text HTML-escaped (as \u0026lt;…), never the tag itself.
    assert "\\u0026lt;img src=x onerror=alert(1)\\u0026gt;" in html
    assert "\\u003cimg src=x" not in html and evil not in html


def test_gpkg_keeps_column_types(loaded: Any, app: Any, tmp_path: Path) -> None:
    import pyogrio

    from registry import io

    with app.extensions["registry"]["sessions"]() as session:
        path = io.export_gpkg(session, tmp_path / "r.gpkg")
    sites = pyogrio.read_info(path, layer="sites")
    fields = dict(zip(sites["fields"], sites["dtypes"], strict=True))
    assert fields["ground_elevation_m"] == "float64"  # all empty, still a number column
    villages = pyogrio.read_info(path, layer="villages")
    assert dict(zip(villages["fields"], villages["dtypes"], strict=True))["households"] == "int64"


def test_deleting_a_site_audits_its_sectors(loaded: Any, app: Any, api: Any) -> None:
    from sqlalchemy import select

    from registry.models import Audit

    assert api.delete("measurements/M-1", params={"version": 1}).status_code == 204
    assert api.delete("sites/VT-BL-01", params={"version": 1}).status_code == 204
    with app.extensions["registry"]["sessions"]() as session:
        keys = set(session.scalars(select(Audit.key).where(Audit.action == "delete")))
    assert {"VT-BL-01", "VT-BL-01-1", "VT-BL-01-2"} <= keys
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        assert len(store.list_records(session, Site)) == 1
