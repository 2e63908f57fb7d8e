"""National-size paths: COPY bulk import (PostgreSQL) and keyset pagination, on both backends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from sqlalchemy import select

from registry import db, schemas, store
from registry.errors import ImportRejected
from registry.models import BY_LAYER, Audit
from tests.conftest import sample_layers

STAMPS = ("created_at", "updated_at")


def _import(app: Any, layers: dict[str, list[dict[str, Any]]], **kw: Any) -> store.ImportReport:
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        return store.import_layers(
            session, layers, actor="test", area_bbox=app.config["AREA_BBOX"], **kw
        )


def _without_stamps(feature: dict[str, Any] | None) -> Any:
    if feature is None:
        return None
    props = {k: v for k, v in feature["properties"].items() if k not in STAMPS}
    return {**feature, "properties": props}


def _snapshot(app: Any) -> tuple[dict[str, list[Any]], list[Any]]:
    """Every record and audit entry, without the time stamps (the only expected difference);
    how ``before`` is stored (JSON null or SQL NULL) is part of the entry."""
    with app.extensions["registry"]["sessions"]() as session:
        records = {
            layer: [
                _without_stamps(schemas.to_feature(r)) for r in store.list_records(session, model)
            ]
            for layer, model in BY_LAYER.items()
        }
        stmt = select(Audit, Audit.before.is_(None))
        audit = [
            (
                a.actor,
                a.action,
                a.entity,
                a.key,
                _without_stamps(a.before),
                _without_stamps(a.after),
                sql_null,
            )
            for a, sql_null in session.execute(stmt)
        ]
    return records, sorted(audit, key=repr)


def _clear(app: Any) -> None:
    engine = app.extensions["registry"]["engine"]
    db.drop_schema(engine)
    db.upgrade(engine)


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows of each COPY bulk write made during the test."""
    calls: list[int] = []
    copy = store._copy_new_records

    def spy(session: Any, model: Any, rows: Any, **kw: Any) -> None:
        calls.append(len(rows))
        copy(session, model, rows, **kw)

    monkeypatch.setattr(store, "_copy_new_records", spy)
    return calls


def test_bulk_import_stores_what_the_row_path_stores(app: Any, copies: list[int]) -> None:
    layers = sample_layers()
    first = {
        "communes": layers["communes"],
        "sites": layers["sites"][:1],
        "fibre_nodes": layers["fibre_nodes"],
    }
    edited = {
        **layers,
        "sites": [{**layers["sites"][0], "tower_height_m": 45}, *layers["sites"][1:]],
    }
    results = []
    for bulk_min_rows in (10**9, 1):  # the row path, then COPY for every layer with new records
        _clear(app)
        _import(app, first, bulk_min_rows=10**9)
        report = _import(app, edited, bulk_min_rows=bulk_min_rows).to_dict()
        again = _import(app, edited, bulk_min_rows=bulk_min_rows).to_dict()
        results.append((report, again, _snapshot(app)))
    rows, bulk = results
    assert rows == bulk
    report, again, (records, audit) = bulk
    assert report["created"]["sites"] == 1 and report["updated"]["sites"] == 1
    assert report["unchanged"]["communes"] == 2 and not any(again["created"].values())
    assert len(records["sellers"]) == 1 and records["sellers"][0]["properties"]["version"] == 1
    creates = [entry for entry in audit if entry[1] == "create"]
    assert len(creates) == sum(len(rows) for rows in layers.values())
    uses_copy = app.extensions["registry"]["engine"].dialect.name == "postgresql"
    assert bool(copies) is uses_copy


def _villages(n: int, *, bad_row: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """``n`` villages spread over Bình Lư and Tân Phong (inside their polygons)."""
    layers = sample_layers()
    rng = np.random.default_rng(3)
    villages = []
    while len(villages) < n:
        commune = layers["communes"][len(villages) % 2]
        polygon = shapely.geometry.shape(commune["geometry"])
        x0, y0, x1, y1 = polygon.bounds
        lon, lat = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if polygon.contains(shapely.Point(lon, lat)):
            i = len(villages)
            villages.append(
                {
                    "code": f"V-{i:03d}",
                    "name": f"Bản {'Nà' if i % 3 else 'Pá'} {i}",
                    "commune_code": commune["code"],
                    "population": 100 + i,
                    "geometry": {"type": "Point", "coordinates": [lon, lat]},
                }
            )
    if bad_row is not None:
        villages[bad_row]["population"] = -5
    return {"communes": layers["communes"], "villages": villages}


def test_bulk_import_is_all_or_nothing(app: Any, copies: list[int]) -> None:
    with pytest.raises(ImportRejected) as info:
        _import(app, _villages(40, bad_row=37), bulk_min_rows=1)
    assert info.value.details == [
        {"layer": "villages", "row": 38, "field": "population", "reason": "must be at least 0"}
    ]
    assert not copies
    records, audit = _snapshot(app)
    assert not any(records.values()) and not audit


@pytest.mark.parametrize("db_url", ["postgis"], indirect=True)
def test_failure_after_a_copy_rolls_everything_back(
    app: Any, copies: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = store._copy_new_records

    def fail_on_villages(session: Any, model: Any, rows: Any, **kw: Any) -> None:
        copy(session, model, rows, **kw)
        if model.layer == "villages":
            raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_copy_new_records", fail_on_villages)
    with pytest.raises(RuntimeError, match="disk full"):
        _import(app, _villages(40), bulk_min_rows=1)
    records, audit = _snapshot(app)
    assert not any(records.values()) and not audit


def _walk(session: Any, model: Any, *, limit: int, **filters: Any) -> tuple[list[str], list[str]]:
    """Codes met following next pages from the start, and prev pages back from the end."""
    forward: list[str] = []
    page = store.list_page(session, model, limit=limit, **filters)
    assert page.prev_before is None
    while True:
        forward += [r.code for r in page.records]
        if page.next_after is None:
            break
        page = store.list_page(session, model, limit=limit, after=page.next_after, **filters)
    backward = [r.code for r in page.records]
    while page.prev_before is not None:
        page = store.list_page(session, model, limit=limit, before=page.prev_before, **filters)
        backward = [r.code for r in page.records] + backward
    return forward, backward


def test_keyset_pages_return_every_record_once(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    layers = _villages(57)
    layers["fibre_nodes"] = [
        {"code": f"FN-{v['code']}", "name": v["name"], "kind": "splice", "geometry": v["geometry"]}
        for v in layers["villages"]
    ]
    _import(app, layers, bulk_min_rows=10)
    binh_lu = layers["communes"][0]["code"]
    monkeypatch.setattr(store, "COUNT_LIMIT", 20)
    with app.extensions["registry"]["sessions"]() as session:
        for layer in ("villages", "fibre_nodes"):  # by reference, and by polygon
            model = BY_LAYER[layer]
            for filters in (
                {},
                {"commune": binh_lu},
                {"q": "na"},
                {"bbox": (103.4, 22.3, 103.7, 22.45), "q": "ban"},
            ):
                expected = [r.code for r in store.list_records(session, model, **filters)]
                assert len(expected) > 7, filters
                for limit in (1, 7, 100):
                    forward, backward = _walk(session, model, limit=limit, **filters)
                    assert forward == backward == expected, (layer, filters, limit)
                matched = store.list_page(session, model, limit=5, **filters).number_matched
                assert matched == (len(expected) if len(expected) <= 20 else None)


def test_api_pages_follow_links(app: Any, api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _import(app, _villages(30))
    monkeypatch.setattr(store, "COUNT_LIMIT", 20)
    seen: list[str] = []
    doc = api.get("villages", params={"limit": 4, "q": "ban"}).json()
    assert "numberMatched" not in doc  # 30 match, more than the (patched) limit of 20
    while True:
        seen += [f["id"] for f in doc["features"]]
        hrefs = {link["rel"]: link["href"] for link in doc["links"]}
        if "next" not in hrefs:
            break
        doc = api.http.get(hrefs["next"], timeout=30).json()
    assert seen == sorted(f"V-{i:03d}" for i in range(30))
    small = api.get("villages", params={"limit": 4, "q": "pa"}).json()
    assert small["numberMatched"] == 10 and small["numberReturned"] == 4
