"""Siting through the app: CLI and background job over real HTTP, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_job


@pytest.fixture
def covered(loaded: Any, dem: Path, runner: Any) -> Any:
    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    return loaded


def test_siting_needs_coverage(loaded: Any, api: Any) -> None:
    assert api.post("siting").status_code == 404
    assert api.get("siting").status_code == 404


def test_siting_cli_and_map(covered: Any, runner: Any, app: Any) -> None:
    result = runner.invoke(
        args=[
            "siting",
            "run",
            "--candidates",
            "40",
            "--max-sites",
            "3",
            "--candidate-spacing-km",
            "1",
            "--spacing-km",
            "2",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "ip (optimal" in result.output and "Map:" in result.output
    html = (Path(app.config["MAPS_DIR"]) / "siting.html").read_text("utf-8")
    assert "Proposed sites" in html


def test_siting_job_over_http(covered: Any, api: Any) -> None:
    result = run_job(
        api,
        "siting",
        params={"candidates": 40, "max_sites": 2, "method": "greedy", "budget_mvnd": 5000},
    )
    assert result["method"] == "greedy" and len(result["sites"]) <= 2
    assert result["cost_mvnd"] <= 5000
    for site in result["sites"]:
        assert site["backhaul"] in ("fibre", "microwave", "satellite")
        assert site["total_cost_mvnd"] > 0 and 103.0 < site["lon"] < 104.0
    assert api.get("siting").json()["sites"] == result["sites"]
    for bad in (
        {"method": "random"},
        {"max_sites": 0},
        {"budget_mvnd": -1},
        {"candidates": "many"},
    ):
        assert api.post("siting", params=bad).status_code == 400, bad
