"""What-if scenarios: saved and previewed without touching the registry, then promoted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import point, run_job, sample_layers
from tests.test_io import snapshot


@pytest.fixture
def covered(loaded: Any, dem: Path, runner: Any) -> Any:
    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    return loaded


def new_site_changes() -> list[dict[str, Any]]:
    """VT-BL-01 goes down and a new site replaces it a few hundred metres away."""
    site = {k: v for k, v in sample_layers()["sites"][0].items() if k != "code"}
    sector = {k: v for k, v in sample_layers()["sectors"][0].items() if k != "code"}
    return [
        {"action": "change", "layer": "sites", "code": "VT-BL-01", "data": {"status": "down"}},
        {
            "action": "add",
            "layer": "sites",
            "code": "NEW-1",
            "data": {**site, "fibre_node_code": "FN-BL", "geometry": point(103.676, 22.349)},
        },
        {
            "action": "add",
            "layer": "sectors",
            "code": "NEW-1-1",
            "data": {**sector, "site_code": "NEW-1"},
        },
    ]


def test_preview_changes_nothing_and_reports_gains_and_losses(
    covered: Any, api: Any, app: Any
) -> None:
    down = [{"action": "change", "layer": "sites", "code": "VT-BL-01", "data": {"status": "down"}}]
    assert api.put("scenarios/down", json={"changes": down}).status_code == 200
    before = snapshot(app)
    result = run_job(api, "scenarios/down/preview")
    assert snapshot(app) == before  # the registry is untouched
    sellers = {s["code"]: s for s in result["sellers"]}
    assert sellers["SEL-1"]["after"] == "none" and not sellers["SEL-1"]["gains"]
    assert result["population_losing"] >= 420  # Bản Nà Khum lost its site
    assert result["kpi_delta"]["sellers_any_none"] > 0
    assert api.get("sites/VT-BL-01").json()["properties"]["status"] == "active"


def test_promote_adds_new_sites_as_planned(covered: Any, api: Any, app: Any) -> None:
    assert api.put("scenarios/replace", json={"changes": new_site_changes()}).status_code == 200
    assert api.get("sites/NEW-1").status_code == 404  # saving changes nothing
    result = run_job(api, "scenarios/replace/preview")
    assert "sellers" in result and api.get("sites/NEW-1").status_code == 404
    promoted = api.post("scenarios/replace/promote").json()
    assert promoted == {"name": "replace", "sites": ["NEW-1"], "sectors": ["NEW-1-1"]}
    assert api.get("sites/NEW-1").json()["properties"]["status"] == "planned"
    assert api.get("sectors/NEW-1-1").status_code == 200
    assert api.get("sites/VT-BL-01").json()["properties"]["status"] == "active"
    listed = api.get("scenarios").json()
    assert [s["name"] for s in listed] == ["replace"] and listed[0]["promoted_at"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (None, "changes"),
        ([], "changes"),
        (["x"], "change"),
        ([{"action": "explode", "layer": "sites", "code": "A", "data": {}}], "action"),
        ([{"action": "add", "layer": "villages", "code": "A", "data": {}}], "layer"),
        (
            [{"action": "change", "layer": "sites", "code": "NOPE", "data": {"status": "down"}}],
            "code",
        ),
        (
            [
                {
                    "action": "change",
                    "layer": "sites",
                    "code": "VT-BL-01",
                    "data": {"tower_height_m": 999},
                }
            ],
            "tower_height_m",
        ),
        ([{"action": "remove", "layer": "sites", "code": "VT-BL-01"}], "code"),  # still measured
    ],
)
def test_bad_scenarios_are_refused(
    covered: Any, api: Any, app: Any, changes: Any, field: str
) -> None:
    before = snapshot(app)
    r = api.put("scenarios/bad", json={"changes": changes})
    assert r.status_code == 400, r.text
    assert field in {d["field"] for d in r.json()["details"]}
    assert snapshot(app) == before
    assert api.get("scenarios/bad").status_code == 404


def test_scenario_errors(covered: Any, api: Any) -> None:
    assert api.post("scenarios/nope/preview").status_code == 404
    assert api.post("scenarios/nope/promote").status_code == 404
    assert api.put("scenarios/bad name", json={"changes": new_site_changes()}).status_code == 400
    down = [{"action": "change", "layer": "sites", "code": "VT-BL-01", "data": {"status": "down"}}]
    assert api.put("scenarios/d", json={"changes": down}).status_code == 200
    assert api.post("scenarios/d/promote").status_code == 400  # adds no site


def test_scenario_cli(covered: Any, runner: Any, tmp_path: Path) -> None:
    import json

    path = tmp_path / "s.json"
    path.write_text(json.dumps(new_site_changes()), "utf-8")
    assert runner.invoke(args=["scenario", "save", "cli", str(path)]).exit_code == 0
    preview = runner.invoke(args=["scenario", "preview", "cli"])
    assert preview.exit_code == 0 and "Population gaining a class" in preview.output
    promoted = runner.invoke(args=["scenario", "promote", "cli"])
    assert promoted.exit_code == 0 and "NEW-1" in promoted.output
