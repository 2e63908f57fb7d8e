"""The service layer: atomic coverage versions under load, class shares over the registry's
area, shared planning parameters, and one meaning of an antenna's height from the API to the
verdict. Both backends, on the small synthetic DEM."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.features import geometry_mask
from shapely.geometry import shape

from registry import readiness as readiness_core
from registry.radio.linkbudget import SERVICE_CLASS_NODATA, SERVICE_CLASSES
from registry.readiness import Place, ReadinessParams, SiteInfo
from registry.services import coverage, planning, readiness, sheets, siting
from registry.siting import Candidate, CandidateDesign
from registry.terrain import Dem
from tests.conftest import run_job


def _tile_path(lon: float, lat: float, z: int = 12) -> str:
    fx = (lon + 180) / 360 * 2**z
    fy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z
    return f"coverage/tiles/{z}/{int(fx)}/{int(fy)}.png"


@pytest.mark.slow
def test_reads_answer_200_during_recomputes(app: Any, loaded: Any, dem: Path, api: Any) -> None:
    """While coverage is recomputed (three times, the loss cache emptied first so each run
    does real work), every read of the dashboard, a point, the KPIs, the verdicts, the raster
    and a tile answers 200."""
    app.config["COVERAGE_VERSION_GRACE_S"] = 0.0
    run_job(api)
    cache = Path(app.config["DATA_DIR"]) / "loss-cache"
    worker = api.as_(app.tokens["editor"])
    errors: list[BaseException] = []

    def recompute() -> None:
        try:
            for _ in range(3):
                for path in cache.iterdir():
                    path.unlink()
                run_job(worker)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    reads = [
        api.base + "/",
        api.url("coverage/point?lon=103.6795&lat=22.3525"),
        api.url("readiness/kpis"),
        api.url("readiness/sellers"),
        api.url("coverage/service_class.tif"),
        api.url(_tile_path(103.6795, 22.3525)),
    ]
    statuses: list[tuple[str, int]] = []
    thread = threading.Thread(target=recompute)
    thread.start()
    for _ in range(500):  # bounded: the three runs take a few seconds
        if not thread.is_alive():
            break
        for url in reads:
            statuses.append((url, api.http.get(url, timeout=30).status_code))
    thread.join(timeout=120)
    assert not errors and not thread.is_alive()
    assert len(statuses) >= 2 * len(reads)  # reads overlapped the recomputes
    assert [s for s in statuses if s[1] != 200] == []
    # the grace period is 0: only the current version and the one it replaced are left
    root = coverage.coverage_root(app.config)
    current = coverage.current(app.config)
    assert (root / coverage.POINTER).read_text("utf-8") == current.name
    assert len(list((root / coverage.VERSIONS).iterdir())) == 2
    assert api.get("coverage").json()["version"] == current.name


def test_a_version_resolved_before_a_switch_stays_readable(
    app: Any, loaded: Any, dem: Path, runner: Any
) -> None:
    """A request that resolved the current version keeps reading it after a recompute; a
    failed computation leaves the current version as it was."""
    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    before = coverage.current(app.config)
    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    after = coverage.current(app.config)
    assert after.name != before.name
    with (
        rasterio.open(before.raster("service_class")) as old,
        rasterio.open(after.raster("service_class")) as new,
    ):
        np.testing.assert_array_equal(old.read(1), new.read(1))
    assert before.values_at([(103.6795, 22.3525)]) == after.values_at([(103.6795, 22.3525)])
    Path(app.config["DATA_DIR"], "dem.tif").unlink()
    assert runner.invoke(args=["coverage", "compute"]).exit_code != 0
    assert coverage.current(app.config).name == after.name


def test_class_shares_count_only_cells_in_the_communes(
    app: Any, loaded: Any, dem: Path, runner: Any
) -> None:
    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    version = coverage.current(app.config)
    summary = version.summary
    with rasterio.open(version.raster("service_class")) as src:
        classes, transform, crs = src.read(1), src.transform, src.crs
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    polygons = []
    for commune in loaded["communes"]:
        geom = shape(commune["geometry"])
        polygons.append(
            shapely.transform(geom, lambda c: np.column_stack(to_utm.transform(c[:, 0], c[:, 1])))
        )
    inside = geometry_mask(polygons, out_shape=classes.shape, transform=transform, invert=True)
    assert 0 < inside.sum() < inside.size  # the communes cover part of the rectangle
    counted = classes[inside]
    counted = counted[counted != SERVICE_CLASS_NODATA]
    assert summary["shares_over"] == "communes" and summary["area_cells"] == counted.size
    for code, name in enumerate(SERVICE_CLASSES):
        expected = round(float((counted == code).sum()) / counted.size, 4)
        assert summary["cell_share_by_class"][name] == expected, name
    assert sum(summary["cell_share_by_class"].values()) == pytest.approx(1.0, abs=1e-3)


def test_siting_uses_the_readiness_backhaul_share(
    app: Any, loaded: Any, dem: Path, api: Any
) -> None:
    """``READINESS_BACKHAUL_SHARE_FOR_STREAMS`` caps siting's candidates as it caps verdicts
    (Tân Phong's site is down, so its village waits for a new site)."""
    assert api.patch("sites/VT-TP-01", json={"status": "down", "version": 1}).ok
    app.config["READINESS_BACKHAUL_SHARE_FOR_STREAMS"] = 0.2
    plan = planning.planning(app.config)
    assert plan.gain.backhaul_share_for_streams == plan.readiness.backhaul_share_for_streams == 0.2
    assert plan.readiness.search_radius_m == app.config["COVERAGE_MAX_RADIUS_M"]
    options = {
        "candidates": 40,
        "max_sites": 3,
        "budget_mvnd": None,
        "spacing_km": 2.0,
        "candidate_spacing_km": 1.0,
        "method": "greedy",
    }
    sessions = app.extensions["registry"]["sessions"]
    with app.app_context(), sessions() as session:
        coverage.run_coverage(app.config, session)
        ample = siting.run_siting(app.config, session, **options)
        # 10 Gbps fibre x 1e-5 = 0.1 Mbps per stream: no candidate lifts anyone to hd_live
        app.config["READINESS_BACKHAUL_SHARE_FOR_STREAMS"] = 1e-5
        starved = siting.run_siting(app.config, session, **options)
    assert ample["backhaul_share_for_streams"] == 0.2
    assert sum(s["population_lifted"] + s["sellers_lifted"] for s in ample["sites"]) > 0
    assert starved["backhaul_share_for_streams"] == 1e-5
    assert all(not s["lifted"] for s in starved["sites"])


def test_api_site_edit_moves_the_antennas_unless_told_not_to(loaded: Any, api: Any) -> None:
    def heights() -> list[float]:
        return [api.get(f"sectors/VT-BL-01-{i}").json()["properties"]["height_m"] for i in (1, 2)]

    assert heights() == [28, 28]
    assert api.patch("sites/VT-BL-01", json={"tower_height_m": 40, "version": 1}).ok
    assert heights() == [38, 38]
    assert api.patch("sites/VT-BL-01", json={"tower_height_m": 20, "version": 2}).ok
    assert heights() == [18, 18]
    r = api.patch(
        "sites/VT-BL-01", json={"tower_height_m": 50, "version": 3}, params={"move_antennas": "no"}
    )
    assert r.ok and heights() == [18, 18]


def test_readiness_antennas_are_the_sectors_over_the_coverage_ground(
    app: Any, loaded: Any, dem: Path, api: Any, runner: Any
) -> None:
    """Each sector's antenna elevation is the ground coverage uses plus its own height_m."""
    assert api.patch("sectors/VT-BL-01-1", json={"height_m": 10, "version": 1}).ok
    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    sessions = app.extensions["registry"]["sessions"]
    with app.app_context(), sessions() as session:
        inputs = readiness.load_inputs(app.config, session)
        specs = coverage.sector_specs(session, inputs.dem, coverage.backhaul_state(session))
    site = next(s for s in inputs.sites if s.code == "VT-BL-01")
    ground = next(s.ground_elevation_m for s in specs if s.site_code == "VT-BL-01")
    row, col = inputs.dem.cell_index(site.x_m, site.y_m)
    cell = (math.floor(float(row) + 0.5), math.floor(float(col) + 0.5))
    assert ground == float(inputs.dem.elevation_m[cell])
    assert site.sector_antenna_elevation_m == {
        "VT-BL-01-1": pytest.approx(ground + 10),
        "VT-BL-01-2": pytest.approx(ground + 28),
    }
    assert site.antenna_elevation("VT-BL-01-1") == pytest.approx(ground + 10)
    assert site.antenna_elevation() == pytest.approx(ground + 28)  # no serving sector: highest


def test_commune_sheet_ranks_event_places_as_the_event_tool(
    app: Any, loaded: Any, dem: Path, runner: Any
) -> None:
    """The sheet's event places are the event tool's ranking of the commune's villages: the
    same rows, confidence included (each sector's uplink constants, not "borderline")."""
    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    sessions = app.extensions["registry"]["sessions"]
    with app.app_context(), sessions() as session:
        inputs = readiness.load_inputs(app.config, session)
    sheet = sheets.commune_sheet(inputs, "03390")
    tool = readiness.event_places(
        inputs,
        streams=sheets.SHEET_EVENT_STREAMS,
        quality=sheets.SHEET_EVENT_QUALITY,
        travel_radius_m=sheets.SHEET_EVENT_TRAVEL_M,
        candidates="villages",
    )
    mine = set(sheet.village_names)
    assert sheet.events
    assert sheet.events == [r for r in tool.rows if r["code"] in mine][: len(sheet.events)]


def test_terrain_reason_looks_from_the_serving_sector() -> None:
    """A ridge that hides the low sector's antenna does not hide the high one on the same
    mast: the verdict's terrain reason depends on which sector serves."""
    elevation = np.zeros((3, 101), dtype=np.float32)
    elevation[:, 50] = 60.0  # a 60 m ridge halfway along a 10 km flat line
    dem = Dem(elevation, Affine(100.0, 0, 0, 0, -100.0, 300.0), "EPSG:32648")
    place = Place("P", 50.0, 150.0)
    site = SiteInfo(
        "S", 10_050.0, 150.0, 200.0, "active", frozenset({"4G"}), {"low": 20.0, "high": 200.0}
    )
    params = ReadinessParams()
    blocked = readiness_core._terrain_reason(dem, place, site, 10_000.0, params, "low")
    assert blocked is not None and blocked.code == "terrain" and blocked.params["site"] == "S"
    assert readiness_core._terrain_reason(dem, place, site, 10_000.0, params, "high") is None


def test_candidate_design_height_is_the_antenna_height() -> None:
    candidate = Candidate("C", 0.0, 0.0, 500.0, 0.0, "given")
    sectors = CandidateDesign(antenna_height_m=42.0).sectors(candidate)
    assert [s.height_m for s in sectors] == [42.0, 42.0, 42.0]
    assert {s.ground_elevation_m for s in sectors} == {500.0}


def test_a_seller_page_computes_only_that_sellers_verdict(
    client: Any, loaded: Any, dem: Path, runner: Any, monkeypatch: Any
) -> None:
    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    asked: list[Any] = []
    verdicts = readiness_core.seller_verdicts

    def spy(*args: Any, **kw: Any) -> Any:
        asked.append(kw.get("only"))
        return verdicts(*args, **kw)

    monkeypatch.setattr(readiness_core, "seller_verdicts", spy)
    page = client.get("/records/sellers/SEL-1")
    assert page.status_code == 200 and b'id="verdict"' in page.data
    assert asked == [{"SEL-1"}]
