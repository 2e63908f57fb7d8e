"""Coverage: sweep geometry, LOS vs GDAL, mosaics, cache, incremental update, GeoTIFF."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from registry.errors import ValidationError
from registry.radio import coverage
from registry.radio.antenna import sector_gain_dbi
from registry.radio.coverage import (
    BACKENDS,
    NO_SERVER,
    Backend,
    CoverageParams,
    LossCache,
    SectorSpec,
    SiteLoss,
    compute_coverage,
    compute_coverage_to_geotiffs,
    line_of_sight,
    site_path_loss,
    update_coverage,
    values_at,
    write_coverage_geotiffs,
)
from registry.radio.executors import DaskExecutor
from registry.radio.linkbudget import (
    SERVICE_CLASS_NODATA,
    SERVICE_CLASSES,
    RadioParams,
    ServiceClassThresholds,
    noise_power_dbm,
    power_per_re_dbm,
    service_class_codes,
)
from registry.radio.pathloss import cost231_hata_db, rma_path_loss_db
from registry.terrain import Dem, DemFile, DemSource, synthetic_dem

CELL = 30.0


@pytest.fixture(scope="module")
def mountains() -> Dem:
    """Seeded fractal mountains, 300 x 300 cells of 30 m."""
    return synthetic_dem((300, 300), cell_size_m=CELL, seed=3, relief_m=900.0)


def _xy(dem: Dem, r: float, c: float) -> tuple[float, float]:
    return dem.transform @ (c + 0.5, r + 0.5)


def _sector(
    site: str, code: str, xy: tuple[float, float], azimuth: float, **kw: object
) -> SectorSpec:
    fields = {
        "ground_elevation_m": None,
        "height_m": 30.0,
        "technology": "4G",
        "freq_mhz": 1800.0,
        "bandwidth_mhz": 20.0,
        "mech_tilt_deg": 0.0,
        "elec_tilt_deg": 2.0,
        "h_beamwidth_deg": 65.0,
        "v_beamwidth_deg": 7.0,
        "gain_dbi": 17.0,
        "tx_power_dbm": 46.0,
    } | kw
    return SectorSpec(
        site_code=site, sector_code=code, x_m=xy[0], y_m=xy[1], azimuth_deg=azimuth, **fields
    )  # type: ignore[arg-type]


def _site(site: str, xy: tuple[float, float], **kw: object) -> list[SectorSpec]:
    return [_sector(site, str(i + 1), xy, az, **kw) for i, az in enumerate((0.0, 120.0, 240.0))]


@pytest.mark.parametrize("step", [1, 3])
def test_sweep_reaches_every_cell_within_the_radius(mountains: Dem, step: int) -> None:
    x, y = _xy(mountains, 150.3, 149.6)
    loss = site_path_loss(
        mountains,
        x,
        y,
        antenna_height_m=30.0,
        freqs_mhz=[900.0],
        params=CoverageParams(model="deygout", max_radius_m=3000.0, analysis_step=step),
    )
    rows, cols = np.mgrid[0 : loss.loss_db.shape[1], 0 : loss.loss_db.shape[2]]
    fine_r = (rows + loss.row0) * step + step // 2  # DEM cell of each analysis cell
    fine_c = (cols + loss.col0) * step + step // 2
    d2 = ((fine_r - 150) ** 2 + (fine_c - 150) ** 2) * CELL**2
    inside = d2 <= 3000.0**2
    assert not np.isnan(loss.loss_db[0][inside]).any()
    assert np.isnan(loss.loss_db[0][~inside]).all()


def test_line_of_sight_agrees_with_gdal(mountains: Dem) -> None:
    gdal = pytest.importorskip("osgeo.gdal", reason="GDAL Python bindings (osgeo) not installed")
    gdal.UseExceptions()
    rows, cols = mountains.shape
    ds = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Float32)
    ds.SetGeoTransform(mountains.transform.to_gdal())
    ds.SetProjection(mountains.crs.to_wkt())
    ds.GetRasterBand(1).WriteArray(mountains.elevation_m)
    semi_major = 6_378_137.0  # GDAL uses the CRS semi-major axis as earth radius
    k = 4.0 / 3.0
    checked = 0
    for r, c, height in ((150, 150, 30.0), (60, 220, 15.0), (240, 80, 40.0)):
        x, y = mountains.transform @ (c + 0.25, r + 0.25)  # same observer cell for both tools
        out = gdal.ViewshedGenerate(
            ds.GetRasterBand(1),
            "MEM",
            "",
            [],
            x,
            y,
            height,
            1.5,
            1,
            0,
            2,
            -1,
            1.0 / k,  # dfCurvCoeff = 1/k (= 1 - refraction)
            gdal.GVM_Edge,
            4000.0,
        )
        reference = out.GetRasterBand(1).ReadAsArray()
        x_off, y_off = (
            round(v)
            for v in ~mountains.transform @ (out.GetGeoTransform()[0], out.GetGeoTransform()[3])
        )
        mask, transform = line_of_sight(
            mountains,
            x,
            y,
            observer_height_m=height,
            target_height_m=1.5,
            max_distance_m=4000.0,
            k_factor=k,
            earth_radius_m=semi_major,
        )
        m_col, m_row = (round(v) for v in ~mountains.transform @ (transform.c, transform.f))
        full = np.full(mountains.shape, 2, dtype=np.uint8)
        full[y_off : y_off + reference.shape[0], x_off : x_off + reference.shape[1]] = reference
        ours = np.zeros(mountains.shape, dtype=bool)
        ours[m_row : m_row + mask.shape[0], m_col : m_col + mask.shape[1]] = mask
        in_range = full != 2
        agreement = np.mean((full[in_range] == 1) == ours[in_range])
        assert agreement >= 0.99, (r, c, agreement)
        assert 0.02 < ours[in_range].mean() < 0.98  # a non-trivial viewshed
        checked += int(in_range.sum())
    assert checked > 100_000


def test_line_of_sight_flat_and_wall() -> None:
    z = np.full((201, 201), 100.0)
    flat = Dem(z, Affine(CELL, 0, 0, 0, -CELL, 201 * CELL), "EPSG:32648")
    x, y = _xy(flat, 100, 100)
    mask, _ = line_of_sight(
        flat, x, y, observer_height_m=30.0, target_height_m=1.5, max_distance_m=3000.0
    )
    rows, cols = np.mgrid[0:201, 0:201]
    inside = ((rows - 100) ** 2 + (cols - 100) ** 2) * CELL**2 <= 3000.0**2
    assert mask[inside].all() and not mask[~inside].any()
    z[60, :] = 300.0  # a high wall north of the observer
    walled = Dem(z, flat.transform, flat.crs)
    mask, _ = line_of_sight(
        walled, x, y, observer_height_m=30.0, target_height_m=1.5, max_distance_m=3000.0
    )
    assert not mask[20:60, 100].any() and mask[61:100, 100].all() and mask[100:180, 100].all()


def test_rma_uses_the_sweep_line_of_sight_and_hata_ignores_terrain(mountains: Dem) -> None:
    x, y = _xy(mountains, 150, 150)
    radio = RadioParams()
    rma = site_path_loss(
        mountains,
        x,
        y,
        antenna_height_m=30.0,
        freqs_mhz=[1800.0],
        params=CoverageParams(max_radius_m=3000.0, model="rma"),
    )
    hata = site_path_loss(
        mountains,
        x,
        y,
        antenna_height_m=30.0,
        freqs_mhz=[1800.0],
        params=CoverageParams(max_radius_m=3000.0, model="hata"),
    )
    mask, transform = line_of_sight(
        mountains,
        x,
        y,
        observer_height_m=30.0,
        target_height_m=radio.ue_height_m,
        max_distance_m=3000.0,
    )
    m_col, m_row = (round(v) for v in ~mountains.transform @ (transform.c, transform.f))
    n_los = 0
    for r, c in np.random.default_rng(1).integers(60, 240, (200, 2)):
        if math.hypot(r - 150, c - 150) * CELL > 3000.0 or (r, c) == (150, 150):
            continue
        d = math.hypot(r - 150, c - 150) * CELL
        los = bool(mask[r - m_row, c - m_col])
        n_los += los
        assert rma.loss_db[0, r - rma.row0, c - rma.col0] == pytest.approx(
            rma_path_loss_db(d, 1800.0, 30.0, 1.5, los), abs=1e-3
        )
        assert hata.loss_db[0, r - hata.row0, c - hata.col0] == pytest.approx(
            cost231_hata_db(d, 1800.0, 30.0, 1.5), abs=1e-3
        )
    assert n_los > 0


@pytest.mark.parametrize("model", ["deygout", "rma"])
def test_cells_behind_a_ridge_get_less_signal(model: str) -> None:
    z = np.full((241, 61), 300.0)
    z[80:84, :] = 500.0  # ridge 40 cells north of the site
    dem = Dem(z, Affine(CELL, 0, 0, 0, -CELL, 241 * CELL), "EPSG:32648")
    site = _xy(dem, 120, 30)
    sectors = [_sector("S", "N", site, 0.0), _sector("S", "S", site, 180.0)]
    result = compute_coverage(
        dem, sectors, CoverageParams(max_radius_m=3500.0, model=model), workers=1
    )
    for distance in (60, 90, 110):  # cells north (behind the ridge) vs south (open)
        behind = result.rsrp_dbm[120 - distance, 30]
        open_side = result.rsrp_dbm[120 + distance, 30]
        assert behind < open_side - 10.0, (distance, behind, open_side)


def test_best_server_is_the_nearer_site(mountains: Dem) -> None:
    flat = Dem(np.full((200, 300), 200.0), mountains.transform, mountains.crs)
    a, b = _xy(flat, 100, 60), _xy(flat, 100, 240)
    sectors = _site("A", a) + _site("B", b, freq_mhz=2600.0, technology="5G", bandwidth_mhz=100.0)
    result = compute_coverage(
        flat, sectors, CoverageParams(model="deygout", max_radius_m=5000.0), workers=1
    )
    assert values_at(result, *_xy(flat, 100, 90)).site_code == "A"
    assert values_at(result, *_xy(flat, 100, 200)).site_code == "B"
    codes = np.array([s.site_code for s in result.sectors])
    served = result.best_server != NO_SERVER
    # nearest site everywhere both reach
    _, cols = np.mgrid[0:200, 0:300]
    nearer_a = np.abs(cols - 60) < np.abs(cols - 240) - 20
    nearer_b = np.abs(cols - 240) < np.abs(cols - 60) - 20
    assert (codes[result.best_server[nearer_a & served]] == "A").mean() > 0.95
    assert (codes[result.best_server[nearer_b & served]] == "B").mean() > 0.95


def test_rsrp_sinr_and_classes_follow_the_link_budget(mountains: Dem) -> None:
    site = _xy(mountains, 150, 150)
    sector = _sector("S", "1", site, 45.0, mech_tilt_deg=2.0)
    params = CoverageParams(model="deygout", max_radius_m=3000.0, clutter_margin_db=4.0)
    result = compute_coverage(mountains, [sector], params, workers=1)
    loss = result.site_losses[next(iter(result.site_losses))]
    r, c = 120, 180  # north-east of the site, in the beam
    x, y = _xy(mountains, r, c)
    d = math.hypot(x - site[0], y - site[1])
    bearing = math.degrees(math.atan2(x - site[0], y - site[1]))
    z_tx = float(mountains.elevation_m[150, 150]) + 30.0
    bulge = d * d / (2 * params.k_factor * params.earth_radius_m)
    depression = math.degrees(math.atan2(z_tx - mountains.elevation_m[r, c] - 1.5 + bulge, d))
    gain = sector_gain_dbi(bearing, depression, 45.0, 2.0, 2.0, 65.0, 7.0, 17.0)
    pre = power_per_re_dbm(46.0, 100)
    expected = pre + gain - loss.loss_db[0, r - loss.row0, c - loss.col0] - 4.0
    assert result.rsrp_dbm[r, c] == pytest.approx(expected, abs=1e-3)
    # a single sector: SINR is RSRP over the noise per resource element
    noise = float(noise_power_dbm(15e3, 9.0))
    assert result.sinr_db[r, c] == pytest.approx(expected - noise, abs=1e-3)
    valid = result.service_class != SERVICE_CLASS_NODATA
    np.testing.assert_array_equal(
        result.service_class[valid], service_class_codes(result.ul_rate_mbps[valid])
    )
    strict = dataclasses.replace(
        params,
        thresholds=ServiceClassThresholds(
            fullhd_live_mbps=1e3, hd_live_mbps=1e3, sd_live_mbps=1e3, basic_live_mbps=1e3
        ),
    )
    capped = compute_coverage(mountains, [sector], strict, workers=1)
    assert capped.service_class[valid].max() <= 1  # at most data_only
    assert (result.service_class[valid] >= 2).any()


def test_co_channel_interference_lowers_sinr(mountains: Dem) -> None:
    flat = Dem(np.full((200, 300), 200.0), mountains.transform, mountains.crs)
    a = _site("A", _xy(flat, 100, 100))
    far = _site("B", _xy(flat, 100, 160))
    alone = compute_coverage(
        flat, a, CoverageParams(model="deygout", max_radius_m=3000.0), workers=1
    )
    cochannel = compute_coverage(
        flat, a + far, CoverageParams(model="deygout", max_radius_m=3000.0), workers=1
    )
    other = [dataclasses.replace(s, freq_mhz=1900.0) for s in far]
    separate = compute_coverage(
        flat, a + other, CoverageParams(model="deygout", max_radius_m=3000.0), workers=1
    )
    cell = (100, 120)
    assert cochannel.sinr_db[cell] < alone.sinr_db[cell] - 3.0
    assert separate.best_server[cell] == alone.best_server[cell]
    assert separate.sinr_db[cell] == pytest.approx(alone.sinr_db[cell], abs=1e-4)


def _network(dem: Dem) -> list[SectorSpec]:
    return (
        _site("A", _xy(dem, 70, 70))
        + _site("B", _xy(dem, 220, 200), height_m=40.0)
        + _site("C", _xy(dem, 80, 240), freq_mhz=2600.0, technology="5G", bandwidth_mhz=100.0)
    )


def _assert_same(a: object, b: object) -> None:
    for name in ("best_server", "rsrp_dbm", "sinr_db", "ul_rate_mbps", "service_class"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_cache_hit_and_incremental_update(mountains: Dem, tmp_path: Path) -> None:
    params = CoverageParams(model="deygout", max_radius_m=3000.0)
    sectors = _network(mountains)
    calls: list[tuple[int, int]] = []
    first = compute_coverage(
        mountains,
        sectors,
        params,
        cache_dir=tmp_path,
        workers=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert (first.n_computed, first.n_cached) == (3, 0)
    assert calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == list(range(1, len(calls) + 1))
    again = compute_coverage(mountains, sectors, params, cache_dir=tmp_path, workers=2)
    assert (again.n_computed, again.n_cached) == (0, 3)
    _assert_same(first, again)

    edited = [
        dataclasses.replace(s, height_m=45.0, azimuth_deg=s.azimuth_deg + 30.0)
        if s.site_code == "B"
        else s
        for s in sectors
    ]
    updated = update_coverage(first, edited, cache_dir=tmp_path, workers=2)
    assert (updated.n_computed, updated.n_cached) == (1, 2)
    _assert_same(updated, compute_coverage(mountains, edited, params, workers=2))

    # a pattern-only edit reuses every loss; switching a site off removes it
    turned = [
        dataclasses.replace(s, azimuth_deg=10.0) if s.sector_code == "1" else s for s in edited
    ]
    assert update_coverage(updated, turned, workers=1).n_computed == 0
    off = [dataclasses.replace(s, site_active=False) if s.site_code == "C" else s for s in turned]
    result = update_coverage(updated, off, workers=1)
    _assert_same(result, compute_coverage(mountains, off, params, workers=1))
    served = result.best_server[result.best_server != NO_SERVER]
    assert not any(result.sectors[i].site_code == "C" for i in np.unique(served))


def test_dask_and_streamed_runs_equal_the_single_process_run(
    mountains: Dem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a local Dask cluster, from the DEM GeoTIFF read window by window, with smaller
    tiles streamed to disk: every layer equals the in-memory single-process run exactly."""
    elevation = mountains.elevation_m.copy()
    elevation[:40, 150:] = np.nan  # a void: its cells get the nodata class
    dem = Dem(elevation, mountains.transform, mountains.crs)
    path = tmp_path / "dem.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=300,
        height=300,
        count=1,
        dtype="float32",
        crs=dem.crs,
        transform=dem.transform,
        nodata=-9999.0,
        tiled=True,
        blockxsize=64,
        blockysize=64,
    ) as dst:
        dst.write(np.nan_to_num(elevation, nan=-9999.0), 1)
    dem_file = DemFile(path)
    assert dem_file.fingerprint == dem.fingerprint  # so both share the loss cache
    params = CoverageParams(model="deygout", max_radius_m=5000.0)
    sectors = _network(dem)
    reference = compute_coverage(dem, sectors, params, workers=1)
    assert len(coverage.mosaic.tiles(reference.best_server.shape)) == 9

    monkeypatch.setattr(coverage.mosaic, "TILE_SIZE", 48)  # 7 x 7 tiles, in any order
    with DaskExecutor(n_workers=2, processes=False) as executor:
        on_dask = compute_coverage(dem_file, sectors, params, executor=executor)
        files = compute_coverage_to_geotiffs(
            dem_file,
            sectors,
            tmp_path / "out",
            params,
            cache_dir=tmp_path / "cache",
            executor=executor,
        )
    _assert_same(on_dask, reference)
    assert (files.n_computed, files.shape, files.transform) == (3, (300, 300), reference.transform)
    for name, file in files.paths.items():
        with rasterio.open(file) as src:
            assert src.profile["tiled"] and src.overviews(1)
            np.testing.assert_array_equal(src.read(1), getattr(reference, name), err_msg=name)
    assert (reference.service_class[:40, 150:] == SERVICE_CLASS_NODATA).all()
    assert not list((tmp_path / "out").glob(".*partial*"))
    again = compute_coverage_to_geotiffs(
        dem,
        sectors,
        tmp_path / "again",
        params,
        cache_dir=tmp_path / "cache",
        workers=2,
        lru_size=1,  # every tile re-reads its losses from disk: same files
    )
    assert (again.n_computed, again.n_cached) == (0, 3)
    for name, file in again.paths.items():
        with rasterio.open(file) as src:
            np.testing.assert_array_equal(src.read(1), getattr(reference, name), err_msg=name)


def test_geotiffs_and_values_at_a_point(mountains: Dem, tmp_path: Path) -> None:
    params = CoverageParams(model="deygout", max_radius_m=3000.0, analysis_step=3)
    result = compute_coverage(mountains, _network(mountains), params, workers=1)
    assert result.best_server.shape == (100, 100)
    assert result.transform == mountains.transform @ Affine.scale(3)
    paths = write_coverage_geotiffs(result, tmp_path / "out")
    assert set(paths) == {"best_server", "rsrp_dbm", "sinr_db", "ul_rate_mbps", "service_class"}
    with rasterio.open(paths["rsrp_dbm"]) as src:
        tags = src.tags()
        assert tags["model"] == "deygout"
        assert json.loads(tags["params"])["analysis_step"] == 3
        assert json.loads(tags["params"])["uplink"]["alpha"] == 0.4
        assert json.loads(tags["sector_lookup"])[0] == "A/1"
        assert src.profile["compress"] == "deflate" and src.profile["tiled"]
        assert src.transform == result.transform and src.crs == mountains.crs
        np.testing.assert_array_equal(src.read(1), result.rsrp_dbm)
    with rasterio.open(paths["service_class"]) as src:
        np.testing.assert_array_equal(src.read(1), result.service_class)
        assert src.nodata == SERVICE_CLASS_NODATA

    x, y = result.transform @ (40.5, 30.5)
    point = values_at(result, x, y)
    i = result.best_server[30, 40]
    assert (point.site_code, point.sector_code) == (
        result.sectors[i].site_code,
        result.sectors[i].sector_code,
    )
    assert point.rsrp_dbm == pytest.approx(float(result.rsrp_dbm[30, 40]))
    assert point.ul_rate_mbps == pytest.approx(float(result.ul_rate_mbps[30, 40]))
    with pytest.raises(ValueError, match="outside"):
        values_at(result, x - 1e6, y)


def test_service_class_raster_has_colours_and_names(mountains: Dem, tmp_path: Path) -> None:
    params = CoverageParams(model="deygout", max_radius_m=3000.0, analysis_step=3)
    result = compute_coverage(mountains, _network(mountains), params, workers=1)
    paths = write_coverage_geotiffs(result, tmp_path)
    path = paths["service_class"]
    with rasterio.open(path) as src:
        colours = src.colormap(1)
        assert colours[SERVICE_CLASSES.index("fullhd_live")] == (0x1A, 0x96, 0x41, 255)
        assert colours[SERVICE_CLASSES.index("data_only")] == (0xD7, 0x19, 0x1C, 255)
        assert src.colorinterp[0].name == "palette"
        assert src.descriptions == ("livestream service class code",)
    with rasterio.open(paths["rsrp_dbm"]) as src, pytest.raises(ValueError, match="color table"):
        src.colormap(1)
    assert not list(tmp_path.glob(".*"))  # no partial file nor its sidecar left
    gdalinfo = shutil.which("gdalinfo")
    if gdalinfo is not None:
        info = subprocess.run([gdalinfo, str(path)], capture_output=True, text=True, check=True)
        assert "Color Table (RGB with 256 entries)" in info.stdout
        names = info.stdout.split("Categories:")[1].split("Color Table")[0].split()
        assert names == [
            f"{i}:" if k % 2 == 0 else SERVICE_CLASSES[i] for i in range(6) for k in (0, 1)
        ]


def test_backends_choose_the_site_loss_and_executor(
    mountains: Dem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend supplies the per-site loss (where a GPU kernel plugs in); the rest is shared."""
    params = CoverageParams(model="deygout", max_radius_m=3000.0, analysis_step=3)
    sectors = _network(mountains)
    reference = compute_coverage(mountains, sectors, params, workers=1)
    calls: list[tuple[float, ...]] = []

    def counting_loss(dem: DemSource, x_m: float, y_m: float, **kw: Any) -> SiteLoss:
        calls.append(tuple(kw["freqs_mhz"]))
        return site_path_loss(dem, x_m, y_m, **kw)

    monkeypatch.setitem(BACKENDS, "counting", Backend(counting_loss, BACKENDS["cpu"].executor))
    result = compute_coverage(mountains, sectors, params, backend="counting", workers=2)
    _assert_same(result, reference)
    assert sorted(calls) == [(1800.0,), (1800.0,), (2600.0,)]
    with pytest.raises(ValidationError, match="backend") as info:
        compute_coverage(mountains, sectors, params, backend="quantum")
    assert info.value.details[0]["field"] == "backend"


@pytest.mark.slow
def test_dask_backend_by_name(mountains: Dem) -> None:
    params = CoverageParams(model="deygout", max_radius_m=3000.0, analysis_step=3)
    sectors = _network(mountains)
    reference = compute_coverage(mountains, sectors, params, workers=1)
    _assert_same(compute_coverage(mountains, sectors, params, backend="dask", workers=2), reference)


def test_loss_cache_is_bounded_and_travels_empty(mountains: Dem, tmp_path: Path) -> None:
    params = CoverageParams(model="deygout", max_radius_m=1500.0)
    cache = LossCache(tmp_path, lru_size=2)
    keys = []
    for r in (50, 100, 150):
        x, y = _xy(mountains, r, r)
        loss = site_path_loss(
            mountains, x, y, antenna_height_m=30.0, freqs_mhz=[900.0], params=params
        )
        cache.store(loss)
        keys.append(loss.key)
    assert all(k in cache for k in keys) and "0" * 32 not in cache
    first = cache.get(keys[0])
    assert cache.get(keys[0]) is first  # from memory
    np.testing.assert_array_equal(first.loss_db, cache.load(keys[0]).loss_db)  # type: ignore[union-attr]
    cache.get(keys[1])
    cache.get(keys[2])
    assert cache.n_in_memory == 2
    assert cache.get(keys[0]) is not first  # evicted, read again
    copy = pickle.loads(pickle.dumps(cache))
    assert (copy.directory, copy.lru_size, copy.n_in_memory) == (tmp_path, 2, 0)
    with pytest.raises(KeyError, match="not in the cache"):
        cache.get("0" * 32)
    assert LossCache(None).load(keys[0]) is None
    with pytest.raises(ValueError, match="lru_size"):
        LossCache(tmp_path, lru_size=0)


def test_invalid_inputs(mountains: Dem) -> None:
    with pytest.raises(ValueError, match="odd"):
        CoverageParams(analysis_step=2)
    with pytest.raises(ValueError, match="model"):
        CoverageParams(model="okumura")  # type: ignore[arg-type]
    site = _xy(mountains, 10, 10)
    with pytest.raises(ValueError, match="duplicate"):
        compute_coverage(mountains, [_sector("A", "1", site, 0.0)] * 2, workers=1)
    with pytest.raises(ValueError, match="outside the DEM"):
        site_path_loss(mountains, -1e6, 0.0, antenna_height_m=30.0, freqs_mhz=[1800.0])


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    from registry.errors import ServiceUnavailable
    from registry.radio.executors import DaskExecutor

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        pytest.raises(ServiceUnavailable, match="cannot reach the Dask scheduler") as e,
        DaskExecutor(f"tcp://127.0.0.1:{port}", connect_timeout_s=2),
    ):
        pass
    assert e.value.status == 503 and e.value.details[0]["field"] == "DASK_SCHEDULER"
