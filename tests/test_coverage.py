"""Coverage through the app: background job over real HTTP, rasters, point values, incremental
edits, calibration and the CLI, on both backends, over a small synthetic DEM."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from distributed import LocalCluster

from registry.maps import CLASS_COLOURS
from registry.radio.linkbudget import SERVICE_CLASSES
from registry.services import coverage
from tests.conftest import run_job


def test_coverage_needs_a_dem(loaded: Any, api: Any) -> None:
    r = api.post("coverage")
    assert r.status_code == 404 and "no DEM" in r.json()["message"]
    assert api.get("coverage").status_code == 404
    assert api.get("coverage/point", params={"lon": 103.6, "lat": 22.3}).status_code == 404
    assert api.get("jobs/nope").status_code == 404


def test_coverage_job_rasters_and_points(loaded: Any, dem: Path, api: Any) -> None:
    result = run_job(api)
    assert result["sectors"] == 3
    assert result["technologies"] == {
        "4G": {"sectors": 3, "site_groups_computed": 2, "site_groups_reused": 0}
    }
    summary = api.get("coverage").json()
    assert summary["model"] == "p1812" and summary["cell_size_m"] == 250.0  # the default
    assert set(summary["rasters"]) == {
        "4g_best_server",
        "4g_rsrp_dbm",
        "4g_sinr_db",
        "4g_ul_rate_mbps",
        "4g_service_class",
        "service_class",
    }
    raster = api.http.get(summary["rasters"]["service_class"], timeout=30)
    assert raster.status_code == 200
    with rasterio.MemoryFile(raster.content) as mem, mem.open() as src:
        assert src.crs.to_epsg() == 32648 and src.tags()["model"] == "p1812"
        assert src.overviews(1) is not None
        assert src.colormap(1)[SERVICE_CLASSES.index("fullhd_live")] == (0x1A, 0x96, 0x41, 255)
        assert src.descriptions == ("livestream service class code",)
    at_site = api.get("coverage/point", params={"lon": 103.6795, "lat": 22.3525}).json()
    assert at_site["inside"] and at_site["4G"]["site_code"] == "VT-BL-01"
    assert at_site["4G"]["rsrp_dbm"] > -90 and at_site["service_class"] != "none"
    assert at_site["service_class"] == at_site["4G"]["service_class"]
    outside = api.get("coverage/point", params={"lon": 102.5, "lat": 22.0}).json()
    assert outside == {"lon": 102.5, "lat": 22.0, "inside": False}
    for bad in ({"lon": 200, "lat": 22}, {"lat": 22}, {"lon": "x", "lat": 22}):
        assert api.get("coverage/point", params=bad).status_code == 400
    assert api.get("coverage/elevation.tif").status_code == 404
    assert api.get("coverage/5g_rsrp_dbm.tif").status_code == 404  # no 5G sectors here
    # the same class on the XYZ tile over the site, in the map's colour
    z, lon, lat = 12, 103.6795, 22.3525
    fx = (lon + 180) / 360 * 2**z
    fy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z
    tile = api.get(f"coverage/tiles/{z}/{int(fx)}/{int(fy)}.png")
    assert tile.status_code == 200 and tile.headers["Content-Type"] == "image/png"
    with rasterio.MemoryFile(tile.content) as mem, mem.open() as src:
        rgba = src.read()[:, int((fy % 1) * 256), int((fx % 1) * 256)]
    colour = CLASS_COLOURS[at_site["service_class"]]
    assert list(rgba) == [int(colour[i : i + 2], 16) for i in (1, 3, 5)] + [255]
    assert api.get("coverage/tiles/12/0/0.png").status_code == 200  # far away: transparent
    assert api.get("coverage/tiles/3/9/0.png").status_code == 404
    cached = api.get(
        f"coverage/tiles/{z}/{int(fx)}/{int(fy)}.png",
        headers={"If-None-Match": tile.headers["ETag"]},
    )
    assert cached.status_code == 304


def test_editing_a_site_recomputes_only_that_site(loaded: Any, dem: Path, api: Any) -> None:
    run_job(api)
    before = api.get("coverage/point", params={"lon": 103.6795, "lat": 22.3525}).json()
    assert api.patch("sites/VT-BL-01", json={"tower_height_m": 60, "version": 1}).status_code == 200
    for sector in ("VT-BL-01-1", "VT-BL-01-2"):  # the antennas went up with the tower
        assert api.get(f"sectors/{sector}").json()["properties"]["height_m"] == 58
    result = run_job(api)["technologies"]["4G"]
    assert (result["site_groups_computed"], result["site_groups_reused"]) == (1, 1)
    after = api.get("coverage/point", params={"lon": 103.6795, "lat": 22.3525}).json()
    assert after["4G"]["rsrp_dbm"] != before["4G"]["rsrp_dbm"]
    # A site that is down serves nobody.
    assert api.patch("sites/VT-BL-01", json={"status": "down", "version": 2}).status_code == 200
    run_job(api)
    down = api.get("coverage/point", params={"lon": 103.6795, "lat": 22.3525}).json()
    assert down["4G"]["site_code"] != "VT-BL-01"
    # So does a site whose fibre is cut: VT-BL-01 is back up, its only fibre link is cut.
    assert api.patch("sites/VT-BL-01", json={"status": "active", "version": 3}).status_code == 200
    assert api.patch("fibre_links/FL-1", json={"status": "cut", "version": 1}).status_code == 200
    run_job(api)
    cut = api.get("coverage/point", params={"lon": 103.6795, "lat": 22.3525}).json()
    assert cut["4G"]["site_code"] != "VT-BL-01"


def test_calibration_from_measurements(loaded: Any, dem: Path, api: Any) -> None:
    run_job(api)
    report = api.post("coverage/calibration").json()
    assert report["inputs"]["measurements"] == 1
    assert set(report["parameters"]["fitted"]["site_offsets_db"]) == {"VT-BL-01"}
    assert report["status"] == "refused"  # one measurement cannot lower a held-out error


def test_calibration_without_measurements(loaded: Any, dem: Path, api: Any, runner: Any) -> None:
    assert api.delete("measurements/M-1", params={"version": 1}).status_code == 204
    assert runner.invoke(args=["coverage", "compute"]).exit_code == 0
    r = api.post("coverage/calibration")
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "measurements"


def test_coverage_cli(loaded: Any, dem: Path, runner: Any) -> None:
    computed = runner.invoke(args=["coverage", "compute"])
    assert computed.exit_code == 0, computed.output
    assert '"site_groups_computed": 2' in computed.output
    point = runner.invoke(args=["coverage", "point", "103.6795", "22.3525"])
    assert point.exit_code == 0 and '"site_code": "VT-BL-01"' in point.output
    calibrated = runner.invoke(args=["coverage", "calibrate"])
    assert calibrated.exit_code == 0 and '"rmse"' in calibrated.output
    out = dem.parent / "map.html"
    assert runner.invoke(args=["render-map", "--out", str(out)]).exit_code == 0
    html = out.read_text("utf-8")
    assert "L.imageOverlay" in html and "data:image/png;base64" in html


def test_coverage_cli_on_a_dask_cluster(app: Any, loaded: Any, dem: Path, runner: Any) -> None:
    """`--dask ADDRESS` runs the tasks on that cluster; the rasters equal a threaded run."""
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        computed = runner.invoke(args=["coverage", "compute", "--dask", cluster.scheduler_address])
    assert computed.exit_code == 0, computed.output
    assert '"site_groups_computed": 2' in computed.output
    on_dask = coverage.current(app.config).folder
    app.config["COVERAGE_DIR"] = str(dem.parent / "threads")
    for path in (dem.parent / "loss-cache").iterdir():
        path.unlink()
    assert '"site_groups_computed": 2' in runner.invoke(args=["coverage", "compute"]).output
    on_threads = coverage.current(app.config).folder
    assert on_threads.parent == dem.parent / "threads" / "versions"
    for name in ("4g_best_server", "4g_rsrp_dbm", "4g_sinr_db", "4g_ul_rate_mbps", "service_class"):
        with (
            rasterio.open(on_dask / f"coverage_{name}.tif") as a,
            rasterio.open(on_threads / f"coverage_{name}.tif") as b,
        ):
            np.testing.assert_array_equal(a.read(1), b.read(1), err_msg=name)


def test_coverage_cli_without_dem_or_sectors(app: Any, runner: Any, dem: Path) -> None:
    result = runner.invoke(args=["coverage", "compute"])
    assert result.exit_code != 0 and "no sectors" in result.output
    dem.unlink()
    result = runner.invoke(args=["coverage", "compute"])
    assert result.exit_code != 0 and "no DEM" in result.output
