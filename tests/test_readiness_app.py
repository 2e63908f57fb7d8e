"""Readiness through the app (API over real HTTP and CLI) on the sample registry, both backends."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from registry.readiness import REASON_CODES
from registry.web.reasons import explain


@pytest.fixture
def covered(loaded: Any, dem: Path, runner: Any) -> dict[str, Any]:
    result = runner.invoke(args=["coverage", "compute"])
    assert result.exit_code == 0, result.output
    return loaded


def test_readiness_needs_coverage(loaded: Any, dem: Path, api: Any) -> None:
    for path in ("readiness/sellers", "readiness/kpis", "backhaul/cuts"):
        r = api.get(path)
        assert r.status_code == 404 and "no coverage" in r.json()["message"]


def test_seller_verdicts(covered: Any, api: Any) -> None:
    doc = api.get("readiness/sellers").json()
    [feature] = doc["features"]
    props = feature["properties"]
    assert feature["id"] == "SEL-1" and feature["geometry"]["type"] == "Point"
    assert props["site_code"] == "VT-BL-01" and props["technology"] == "4G"
    assert props["service_class"] in (
        "none",
        "data_only",
        "basic_live",
        "sd_live",
        "hd_live",
        "fullhd_live",
    )
    assert props["limiting_factor"] and props["reason"]["code"] in REASON_CODES
    assert props["explanation"] == explain(props["reason"], "vi")  # no Accept-Language: vi
    english = api.get("readiness/sellers", headers={"Accept-Language": "en-GB,en;q=0.8"}).json()
    assert english["features"][0]["properties"]["explanation"] == explain(props["reason"], "en")
    assert props["backhaul_kind"] == "fibre" and props["commune_code"] == "03390"
    assert props["confidence"] in ("likely", "borderline", "unlikely")
    assert 0.0 <= props["p_meets_wanted"] <= 1.0
    rows = list(
        csv.DictReader(
            io.StringIO(
                api.get("readiness/sellers", params={"format": "csv"}).content.decode("utf-8-sig")
            )
        )
    )
    assert rows[0]["code"] == "SEL-1" and rows[0]["service_class"] == props["service_class"]
    assert rows[0]["confidence"] == props["confidence"]
    assert float(rows[0]["p_meets_wanted"]) == props["p_meets_wanted"]
    assert api.get("readiness/sellers", params={"format": "xml"}).status_code == 400
    assert api.get("readiness/sellers", params={"concurrent_streams": 0}).status_code == 400


def test_concurrency_and_a_cut_fibre_change_the_verdict(
    covered: Any, api: Any, runner: Any
) -> None:
    before = api.get("readiness/sellers").json()["features"][0]["properties"]
    assert api.patch("fibre_links/FL-1", json={"status": "cut", "version": 1}).status_code == 200
    after = api.get("readiness/sellers").json()["features"][0]["properties"]
    assert after["site_code"] == before["site_code"]  # the rasters are not recomputed yet
    assert after["service_class"] == "none" and after["limiting_factor"] == "backhaul"
    assert after["reason"] == {"code": "backhaul_cut", "params": {"site": "VT-BL-01"}}
    assert after["explanation"].startswith("Mất đường truyền: trạm VT-BL-01")
    en = api.get("readiness/sellers", params={"lang": "en"}).json()["features"][0]
    assert "VT-BL-01 is cut off" in en["properties"]["explanation"]
    text = api.get("readiness/sellers", params={"format": "csv", "lang": "en"}).text
    row = next(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert (row["reason_code"], row["reason_params"]) == ("backhaul_cut", '{"site": "VT-BL-01"}')
    assert "cut off" in row["explanation"]


def test_kpis(covered: Any, api: Any) -> None:
    doc = api.get("readiness/kpis").json()
    province, *communes = doc["rows"]
    assert province["commune_code"] == "province"
    assert {c["commune"] for c in communes} == {"Bình Lư", "Tân Phong"}
    for label in ("population", "villages", "sellers"):
        for tech in ("4G", "any"):
            total = sum(
                province[f"{label}_{tech}_{c}"]
                for c in ("none", "data_only", "basic_live", "sd_live", "hd_live", "fullhd_live")
            )
            assert total == pytest.approx(1.0, abs=1e-3)
    assert set(doc["stated_figures"]) >= {"centres_claim_holds", "villages_claim_holds"}
    for row, n_villages, n_sellers in zip(doc["rows"], (2, 1, 1), (1, 1, 0), strict=True):
        levels = ("likely", "borderline", "unlikely")
        assert sum(row[f"villages_{level}"] for level in levels) == n_villages, row["commune"]
        assert sum(row[f"sellers_{level}"] for level in levels) == n_sellers, row["commune"]
    text = api.get("readiness/kpis", params={"format": "csv"}).content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("commune_code,commune,")
    r = api.get("readiness/kpis", params={"format": "geojson"})  # not one of its formats
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "format"


def test_event_places(covered: Any, api: Any) -> None:
    doc = api.get(
        "readiness/events", params={"streams": 3, "quality": "sd_live", "lang": "en"}
    ).json()
    ranks = [f["properties"]["rank"] for f in doc["features"]]
    assert ranks == [1, 2]
    for f in doc["features"]:
        assert f["properties"]["confidence"] in ("likely", "borderline", "unlikely")
    first = doc["features"][0]["properties"]
    assert first["reason"]["code"] in ("event_rate", "event_no_signal")
    assert "3 × Live 480p" in first["explanation"] or "No usable signal" in first["explanation"]
    villages = api.get(
        "readiness/events", params={"streams": 1, "candidates": "villages", "format": "json"}
    ).json()
    assert {v["code"] for v in villages["places"]} == {"V-BL-1", "V-TP-1"}
    for bad in (
        {},
        {"streams": 0},
        {"streams": 2, "quality": "4k"},
        {"streams": 2, "candidates": "towns"},
        {"streams": 2, "travel_km": -1},
    ):
        r = api.get("readiness/events", params=bad)
        assert r.status_code == 400, bad


def test_fibre_cut_impact(covered: Any, api: Any) -> None:
    [cut] = api.get("backhaul/cuts").json()
    assert cut["link_code"] == "FL-1" and cut["sites"] == ["VT-BL-01"]
    sellers = api.get("readiness/sellers").json()["features"]
    served = [f["id"] for f in sellers if f["properties"]["service_class"] != "none"]
    assert cut["sellers"] == served
    assert api.get("backhaul/cuts", params={"link": "FL-1"}).json() == [cut]
    assert api.get("backhaul/cuts", params={"link": "NOPE"}).status_code == 404


def test_readiness_cli(covered: Any, runner: Any, tmp_path: Path) -> None:
    report = runner.invoke(args=["readiness", "report"])
    assert report.exit_code == 0, report.output
    for text in (
        "Coverage KPIs",
        "Bình Lư",
        "Seller verdicts by class",
        "Top 5 single points of failure",
        "FL-1",
        "Wall time",
    ):
        assert text in report.output
    out = tmp_path / "v.geojson"
    assert runner.invoke(args=["readiness", "sellers", str(out)]).exit_code == 0
    assert '"SEL-1"' in out.read_text("utf-8")
    bad = runner.invoke(args=["readiness", "sellers", str(tmp_path / "v.txt")])
    assert bad.exit_code != 0
    events = runner.invoke(args=["readiness", "events", "--streams", "2"])
    assert events.exit_code == 0 and "  1. " in events.output
