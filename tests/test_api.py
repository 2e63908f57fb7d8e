"""The JSON API over real HTTP: every endpoint's success and error paths, on both backends."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from registry.models import BY_LAYER
from tests.conftest import point, sample_layers

#: One field per layer to change in update tests, with its new value.
UPDATES: dict[str, tuple[str, Any]] = {
    "communes": ("population", 20000),
    "villages": ("population", 500),
    "sites": ("tower_height_m", 45.0),
    "sectors": ("azimuth_deg", 90.0),
    "fibre_nodes": ("name", "PoP Bình Lư 2"),
    "fibre_links": ("capacity_mbps", 20000.0),
    "sellers": ("products", "Chè"),
    "events": ("streams", 8),
    "measurements": ("rsrp_dbm", -101.0),
}
LAYERS = list(BY_LAYER)


def new_record(layer: str) -> dict[str, Any]:
    """A valid new record of ``layer`` (a copy of the sample's first row with a new code)."""
    row = copy.deepcopy(sample_layers()[layer][0])
    row["code"] = f"NEW-{layer}"
    if layer == "communes":
        row["name"] = "Xã Mới"
    return row


def feature(row: dict[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in row.items() if k != "geometry"}
    return {"type": "Feature", "geometry": row.get("geometry"), "properties": props}


@pytest.mark.parametrize("layer", LAYERS)
def test_list_is_a_feature_collection(loaded: Any, api: Any, layer: str) -> None:
    r = api.get(layer)
    assert r.status_code == 200
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["numberMatched"] == doc["numberReturned"] == len(loaded[layer])
    codes = sorted(row["code"] for row in loaded[layer])
    assert [f["id"] for f in doc["features"]] == codes
    first = doc["features"][0]
    assert first["type"] == "Feature" and first["properties"]["version"] == 1
    if BY_LAYER[layer].geometry_type:
        assert len(doc["bbox"]) == 4 and first["geometry"]["type"].endswith(
            BY_LAYER[layer].geometry_type
        )
    else:
        assert first["geometry"] is None


@pytest.mark.parametrize("layer", LAYERS)
def test_get_one_and_missing(loaded: Any, api: Any, layer: str) -> None:
    code = loaded[layer][0]["code"]
    r = api.get(f"{layer}/{code}")
    assert r.status_code == 200 and r.json()["id"] == code
    assert r.headers["ETag"] == '"1"'
    missing = api.get(f"{layer}/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["message"]


@pytest.mark.parametrize("layer", LAYERS)
def test_create_update_delete(loaded: Any, api: Any, layer: str) -> None:
    row = new_record(layer)
    created = api.post(layer, json=feature(row))
    assert created.status_code == 201, created.text
    assert created.headers["Location"].endswith(f"/api/v1/{layer}/NEW-{layer}")
    assert created.json()["properties"]["version"] == 1

    field, value = UPDATES[layer]
    updated = api.patch(f"{layer}/NEW-{layer}", json={field: value, "version": 1})
    assert updated.status_code == 200, updated.text
    assert updated.json()["properties"][field] == value
    assert updated.json()["properties"]["version"] == 2
    assert api.get(f"{layer}/NEW-{layer}").json()["properties"][field] == value

    # PUT (like PATCH, it changes the fields it carries), the version given as If-Match.
    put = api.put(f"{layer}/NEW-{layer}", json=feature(row), headers={"If-Match": '"2"'})
    assert put.status_code == 200, put.text
    assert put.json()["properties"]["version"] == 3

    assert api.delete(f"{layer}/NEW-{layer}").status_code == 428  # say which version
    deleted = api.delete(f"{layer}/NEW-{layer}", headers={"If-Match": '"3"'})
    assert deleted.status_code == 204
    assert api.get(f"{layer}/NEW-{layer}").status_code == 404
    assert api.delete(f"{layer}/NEW-{layer}", params={"version": 3}).status_code == 404


@pytest.mark.parametrize("layer", LAYERS)
def test_create_rejects_bad_fields_without_storing(loaded: Any, api: Any, layer: str) -> None:
    row = new_record(layer)
    row["colour"] = "red"
    r = api.post(layer, json=feature(row))
    assert r.status_code == 400
    assert {"field": "colour", "reason": f"is not a field of {layer}"} in r.json()["details"]
    assert api.get(f"{layer}/NEW-{layer}").status_code == 404


@pytest.mark.parametrize("layer", LAYERS)
def test_create_duplicate_code_is_a_conflict(loaded: Any, api: Any, layer: str) -> None:
    row = copy.deepcopy(loaded[layer][0])
    r = api.post(layer, json=feature(row))
    assert r.status_code == 409
    assert r.json()["current"]["id"] == row["code"]


@pytest.mark.parametrize("layer", LAYERS)
def test_stale_write_gets_409_with_current_version(loaded: Any, api: Any, layer: str) -> None:
    code = loaded[layer][0]["code"]
    field, value = UPDATES[layer]
    assert api.patch(f"{layer}/{code}", json={field: value, "version": 1}).status_code == 200
    stale = api.patch(f"{layer}/{code}", json={field: value, "version": 1})
    assert stale.status_code == 409
    body = stale.json()
    assert body["current"]["properties"]["version"] == 2
    assert "version 2" in body["message"]
    stale_delete = api.delete(f"{layer}/{code}", params={"version": 1})
    assert stale_delete.status_code == 409
    assert api.get(f"{layer}/{code}").status_code == 200


def test_update_needs_a_version(loaded: Any, api: Any) -> None:
    r = api.patch("sites/VT-BL-01", json={"tower_height_m": 50})
    assert r.status_code == 428
    assert r.json()["details"][0]["field"] == "version"
    bad = api.patch("sites/VT-BL-01", json={"tower_height_m": 50, "version": "x"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("layer", "change", "field", "reason"),
    [
        ("sites", {"tower_height_m": 301}, "tower_height_m", "must be at most 300"),
        ("sites", {"tower_height_m": "tall"}, "tower_height_m", "must be a number"),
        ("sites", {"operator": "45204"}, "operator", "does not match"),
        ("sites", {"status": "broken"}, "status", "must be one of planned, active, down"),
        ("sectors", {"freq_mhz": 300}, "freq_mhz", "must be at least 400"),
        ("sectors", {"freq_mhz": 7200}, "freq_mhz", "must be at most 7125"),
        ("sectors", {"azimuth_deg": 361}, "azimuth_deg", "must be at most 360"),
        ("sectors", {"mech_tilt_deg": -21}, "mech_tilt_deg", "must be at least -20"),
        ("sectors", {"elec_tilt_deg": 31}, "elec_tilt_deg", "must be at most 30"),
        ("sectors", {"bandwidth_mhz": 7}, "bandwidth_mhz", "3GPP 4G bandwidth"),
        ("sectors", {"site_code": "NOWHERE"}, "site_code", "does not exist"),
        ("villages", {"commune_code": "99999"}, "commune_code", "does not exist"),
        ("villages", {"population": 1.5}, "population", "must be an integer"),
        ("villages", {"name": ""}, "name", "is required"),
        ("events", {"start": "yesterday"}, "start", "cannot be read"),
        ("measurements", {"rsrp_dbm": -10}, "rsrp_dbm", "must be at most -20"),
        ("sites", {"geometry": point(22.35, 103.68)}, "geometry", "look swapped"),
        ("sites", {"geometry": point(105.8, 21.0)}, "geometry", "outside every province"),
        ("sites", {"geometry": point(200, 22)}, "geometry", "outside longitude"),
        (
            "sites",
            {"geometry": {"type": "LineString", "coordinates": [[103.6, 22.3], [103.7, 22.4]]}},
            "geometry",
            "must be a Point",
        ),
        ("sites", {"geometry": {"type": "Point"}}, "geometry", "cannot be read"),
        (
            "communes",
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[103.6, 22.3], [103.7, 22.4], [103.7, 22.3], [103.6, 22.4], [103.6, 22.3]]
                    ],
                }
            },
            "geometry",
            "is invalid: Self-intersection",
        ),
    ],
)
def test_field_errors_name_the_field(
    loaded: Any, api: Any, layer: str, change: dict[str, Any], field: str, reason: str
) -> None:
    row = {**new_record(layer), **change}
    r = api.post(layer, json=feature(row))
    assert r.status_code == 400, r.text
    reasons = {d["field"]: d["reason"] for d in r.json()["details"]}
    assert reason in reasons[field]
    code = loaded[layer][0]["code"]
    patched = api.patch(f"{layer}/{code}", json={**change, "version": 1})
    assert patched.status_code == 400
    assert api.get(f"{layer}/{code}").json()["properties"]["version"] == 1


def test_outside_area_needs_explicit_override(loaded: Any, api: Any) -> None:
    row = {**new_record("sites"), "geometry": point(105.8, 21.0)}
    r = api.post("sites", json=feature(row), params={"allow_outside_area": "true"})
    assert r.status_code == 201


def test_names_are_stored_nfc(loaded: Any, api: Any) -> None:
    decomposed = "Bi\u0300nh Lu\u031b"  # "Bình Lư" typed with combining marks
    row = {**new_record("villages"), "name": decomposed}
    r = api.post("villages", json=feature(row))
    assert r.json()["properties"]["name"] == "Bình Lư"


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"type": "Feature", "properties": 3}'])
def test_malformed_bodies_are_400(loaded: Any, api: Any, body: str) -> None:
    r = api.post("sites", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["details"]


def test_unknown_layer_is_404_json(api: Any) -> None:
    r = api.get("towers")
    assert r.status_code == 404 and r.json()["error"] == "Not Found"
    assert api.post("towers", json={}).status_code == 404
    r = api.post("export")  # not a layer: its GET-only route answers
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == {
        "GET",
        "HEAD",
        "OPTIONS",
    }


def test_search_ignores_case_and_diacritics(loaded: Any, api: Any) -> None:
    for query in ("binh lu", "BÌNH LƯ", "Bình"):
        doc = api.get("communes", params={"q": query}).json()
        assert [f["properties"]["name"] for f in doc["features"]] == ["Bình Lư"]
    assert api.get("villages", params={"q": "na khum"}).json()["numberMatched"] == 1
    assert api.get("villages", params={"q": "100%_"}).json()["numberMatched"] == 0
    assert api.get("fibre_links", params={"q": "fl-"}).json()["numberMatched"] == 1


def test_commune_filter(loaded: Any, api: Any) -> None:
    binh_lu = loaded["communes"][0]["code"]
    expected = {
        "villages": ["V-BL-1"],
        "sites": ["VT-BL-01"],
        "sellers": ["SEL-1"],
        "sectors": ["VT-BL-01-1", "VT-BL-01-2"],
        "events": ["EV-1"],
        "fibre_nodes": ["FN-BL"],
        "fibre_links": ["FL-1"],
        "measurements": ["M-1"],
        "communes": [binh_lu],
    }
    for layer, codes in expected.items():
        doc = api.get(layer, params={"commune": binh_lu}).json()
        assert [f["id"] for f in doc["features"]] == codes, layer
    for layer in ("fibre_nodes", "villages", "sectors"):
        assert api.get(layer, params={"commune": "00000"}).status_code == 404


def test_bbox_filter_and_errors(loaded: Any, api: Any) -> None:
    doc = api.get("sites", params={"bbox": "103.6,22.3,103.8,22.4"}).json()
    assert [f["id"] for f in doc["features"]] == ["VT-BL-01"]
    sectors = api.get("sectors", params={"bbox": "103.6,22.3,103.8,22.4"}).json()
    assert sectors["numberMatched"] == 2
    for bad in ("1,2,3", "a,b,c,d", "103.8,22.3,103.6,22.4"):
        r = api.get("sites", params={"bbox": bad})
        assert r.status_code == 400 and r.json()["details"][0]["field"] == "bbox"


def test_pagination(loaded: Any, api: Any) -> None:
    page = api.get("sectors", params={"limit": 2}).json()
    assert page["numberMatched"] == 3 and page["numberReturned"] == 2
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    rest = api.http.get(nxt, timeout=30).json()
    assert [f["id"] for f in rest["features"]] == ["VT-TP-01-1"]
    assert "next" not in {link["rel"] for link in rest["links"]}
    prev = next(link["href"] for link in rest["links"] if link["rel"] == "prev")
    back = api.http.get(prev, timeout=30).json()
    assert [f["id"] for f in back["features"]] == ["VT-BL-01-1", "VT-BL-01-2"]
    assert "prev" not in {link["rel"] for link in back["links"]}
    for bad in (
        {"limit": 0},
        {"limit": 5000},
        {"offset": 2},
        {"limit": "ten"},
        {"after": "A", "before": "B"},
    ):
        r = api.get("sectors", params=bad)
        assert r.status_code == 400 and r.json()["details"][0]["field"] in bad


def test_delete_of_referenced_record_is_a_conflict(loaded: Any, api: Any) -> None:
    code = loaded["communes"][0]["code"]
    r = api.delete(f"communes/{code}", params={"version": 1})
    assert r.status_code == 409
    assert api.get(f"communes/{code}").status_code == 200
    # Deleting a site takes its sectors with it.
    assert api.delete("measurements/M-1", params={"version": 1}).status_code == 204
    assert api.delete("sites/VT-BL-01", params={"version": 1}).status_code == 204
    assert api.get("sectors", params={"q": "vt-bl-01"}).json()["numberMatched"] == 0


def test_code_cannot_change(loaded: Any, api: Any) -> None:
    r = api.patch("sites/VT-BL-01", json={"code": "OTHER", "version": 1})
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "code"


def test_openapi_document_is_valid(api: Any) -> None:
    from openapi_spec_validator import validate

    doc = api.get("openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("SellerVerdict", "EventPlace"):
        assert {"p_meets_wanted", "confidence"} <= set(schemas[name]["properties"])
    assert "villages_borderline" in schemas["KpiRow"]["properties"]
    for path in ("/api/v1/sellers/{code}/profile.svg", "/api/v1/coverage/profile.svg"):
        assert "image/svg+xml" in doc["paths"][path]["get"]["responses"]["200"]["content"]
    validate(doc)
    assert set(BY_LAYER) <= {p.split("/")[3] for p in doc["paths"]}
    sector = doc["components"]["schemas"]["sectors"]["properties"]["freq_mhz"]
    assert (sector["minimum"], sector["maximum"]) == (400, 7125)


def test_openapi_document_is_as_strict_as_the_checks(loaded: Any, api: Any) -> None:
    doc = api.get("openapi.json").json()
    assert doc["servers"] == [{"url": api.base + "/"}]
    sites = doc["paths"]["/api/v1/sites"]
    geometry = sites["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert geometry["properties"]["geometry"]["properties"]["type"] == {"enum": ["Point"]}
    r = api.post(
        "sites", json={**feature(new_record("sites")), "geometry": {"type": "", "coordinates": []}}
    )
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "geometry"
    record = doc["paths"]["/api/v1/sites/{code}"]
    assert {"400", "404", "409", "428"} <= set(record["patch"]["responses"])
    assert next(p for p in record["patch"]["parameters"] if p["name"] == "If-Match")["required"]
    sellers = doc["paths"]["/api/v1/readiness/sellers"]["get"]["responses"]["200"]["content"]
    assert sellers["application/json"]["schema"]["type"] == "array"
    assert set(sellers) == {"application/geo+json", "text/csv", "application/json"}
    # what the document says a parameter is, the API checks
    for path, params, field in [
        ("sites", {"bbox": " 103,22,104,23"}, "bbox"),
        ("sites", {"limit": " 5"}, "limit"),
        ("sites", {"limit": "٥"}, "limit"),
    ]:
        r = api.get(path, params=params)
        assert r.status_code == 400 and r.json()["details"][0]["field"] == field, (path, params)
    r = api.post("sites", params={"allow_outside_area": "maybe"}, json=feature(new_record("sites")))
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "allow_outside_area"
    for change, field in [
        ({"tower_height_m": "31"}, "tower_height_m"),  # a quoted number
        ({"synthetic": 1}, "synthetic"),
        ({"name": 5}, "name"),
    ]:
        r = api.patch("sites/VT-BL-01", json=change, headers={"If-Match": '"1"'})
        assert r.status_code == 400 and r.json()["details"][0]["field"] == field, change
    r = api.post("sites", json={**feature(new_record("sites")), "id": [1]})
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "id"
    r = api.http.request("TRACE", api.url("sites/VT-BL-01"), timeout=30)
    assert r.status_code == 405 and "PATCH" in r.headers["Allow"]


def test_index_lists_layers(api: Any) -> None:
    assert set(api.get("").json()["layers"]) == set(BY_LAYER)


def test_audit_log_records_writes(loaded: Any, app: Any, api: Any) -> None:
    from sqlalchemy import select

    from registry.models import Audit

    api.patch("sites/VT-BL-01", json={"tower_height_m": 45, "version": 1})
    with app.extensions["registry"]["sessions"]() as session:
        entry = session.scalars(
            select(Audit).where(Audit.key == "VT-BL-01").order_by(Audit.id.desc())
        ).first()
    assert entry.action == "update" and entry.actor == "editor (token tests)"
    assert entry.before["properties"]["tower_height_m"] == 30
    assert entry.after["properties"]["tower_height_m"] == 45
