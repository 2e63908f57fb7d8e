"""Terrain: SRTM .hgt and GeoTIFF reading, mosaics, voids, reprojection, profiles."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from registry.terrain import (
    EARTH_RADIUS_M,
    K_FACTOR,
    Dem,
    DemVoidError,
    elevation_at,
    load_dem,
    read_hgt,
    synthetic_dem,
    terrain_profile,
)

N = 1201  # 3 arc-second tile


def _write_hgt(path: Path, values: np.ndarray) -> Path:
    values.astype(">i2").tofile(path)
    return path


def _ramp(lon0: int) -> np.ndarray:
    """Elevation = 1000 x longitude fraction within the tile + 1000 (lon0 - 103), metres."""
    cols = np.arange(N) / (N - 1)
    return np.tile(np.round(1000.0 * (cols + lon0 - 103)), (N, 1)).astype(np.int16)


@pytest.fixture
def tiles(tmp_path: Path) -> tuple[Path, Path]:
    return (
        _write_hgt(tmp_path / "N22E103.hgt", _ramp(103)),
        _write_hgt(tmp_path / "N22E104.hgt", _ramp(104)),
    )


def test_read_hgt_georeference_and_values(tiles: tuple[Path, Path]) -> None:
    dem = read_hgt(tiles[0])
    assert dem.shape == (N, N)
    assert dem.crs.to_epsg() == 4326
    res = 1.0 / 1200
    assert dem.transform.a == pytest.approx(res)
    assert dem.transform.c == pytest.approx(103.0 - res / 2)  # samples centred on whole degrees
    assert dem.transform.f == pytest.approx(23.0 + res / 2)
    assert dem.elevation_m.dtype == np.float32
    assert dem.elevation_m[0, 0] == 0.0 and dem.elevation_m[600, N - 1] == 1000.0
    # a point at 22.5 N, 103.5 E, half way along the ramp
    assert float(elevation_at(dem, 103.5, 22.5)) == pytest.approx(500.0, abs=0.5)


def test_read_hgt_rejects_bad_names_and_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tile name"):
        read_hgt(_write_hgt(tmp_path / "tile.hgt", np.zeros((N, N))))
    with pytest.raises(ValueError, match="3601"):
        read_hgt(_write_hgt(tmp_path / "S01W070.hgt", np.zeros((100, 100))))


def test_mosaic_of_two_tiles(tiles: tuple[Path, Path]) -> None:
    dem = load_dem(tiles, crs=None)
    assert dem.shape == (N, 2 * N - 1)  # neighbours share their edge column
    assert dem.transform.c == pytest.approx(103.0 - 0.5 / 1200)
    assert not np.isnan(dem.elevation_m).any()
    assert float(elevation_at(dem, 104.0, 22.3)) == pytest.approx(1000.0)
    assert float(elevation_at(dem, 104.25, 22.3)) == pytest.approx(1250.0, abs=0.5)


def test_voids_are_an_error_or_filled_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    values = _ramp(103)
    values[500:505, 600:603] = -32768
    path = _write_hgt(tmp_path / "N22E103.hgt", values)
    assert np.isnan(read_hgt(path).elevation_m).sum() == 15
    with pytest.raises(DemVoidError, match="15 DEM cells"):
        load_dem(path, crs=None)
    with caplog.at_level(logging.WARNING, logger="registry.terrain"):
        dem = load_dem(path, crs=None, voids="fill")
    assert "filled 15 DEM void cells" in caplog.text
    assert not np.isnan(dem.elevation_m).any()
    filled = dem.elevation_m[500:505, 600:603]
    assert np.all((filled > 490) & (filled < 510))  # interpolated from the ramp, not sea level


def test_missing_tile_is_reported(tmp_path: Path) -> None:
    a = _write_hgt(tmp_path / "N22E103.hgt", _ramp(103))
    b = _write_hgt(tmp_path / "N23E104.hgt", _ramp(104))  # diagonal: two tiles of the box missing
    with pytest.raises(DemVoidError, match="missing tiles"):
        load_dem([a, b], crs=None)


def test_reprojection_to_utm(tiles: tuple[Path, Path]) -> None:
    dem = load_dem(tiles, resolution_m=90.0)
    assert dem.crs.to_epsg() == 32648
    assert dem.cell_size == (90.0, 90.0)
    # 22.5 N, 104.25 E in UTM 48N, from pyproj
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32648, always_xy=True).transform(104.25, 22.5)
    assert float(elevation_at(dem, x, y)) == pytest.approx(1250.0, abs=2.0)


def test_geotiff_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "dem.tif"
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    transform = Affine(30.0, 0.0, 500_000.0, 0.0, -30.0, 2_500_000.0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=4,
        height=3,
        count=1,
        dtype="float32",
        crs="EPSG:32648",
        transform=transform,
        nodata=-9999.0,
    ) as dst:
        data[0, 0] = -9999.0
        dst.write(data, 1)
    with pytest.raises(DemVoidError):
        load_dem(path)
    dem = load_dem(path, voids="fill")
    assert dem.transform == transform and dem.crs.to_epsg() == 32648
    assert dem.elevation_m[2, 3] == 11.0


def test_dem_owns_a_read_only_copy() -> None:
    data = np.zeros((3, 3), dtype=np.float32)
    dem = Dem(data, Affine(30.0, 0.0, 0.0, 0.0, -30.0, 90.0), "EPSG:32648")
    data[0, 0] = 5.0
    assert dem.elevation_m[0, 0] == 0.0
    with pytest.raises(ValueError):
        dem.elevation_m[0, 0] = 1.0
    with pytest.raises(ValueError, match="north-up"):
        Dem(data, Affine(30.0, 0.0, 0.0, 0.0, 30.0, 90.0), "EPSG:32648")


def test_bilinear_elevation_is_exact_on_a_plane() -> None:
    rows, cols = np.mgrid[0:20, 0:30]
    transform = Affine(10.0, 0.0, 1000.0, 0.0, -10.0, 5000.0)
    x, y = transform @ (cols + 0.5, rows + 0.5)
    dem = Dem(0.5 * x - 0.25 * y + 3000.0, transform, "EPSG:32648")
    px, py = np.array([1007.0, 1123.4, 1291.0]), np.array([4993.0, 4911.1, 4805.5])
    np.testing.assert_allclose(elevation_at(dem, px, py), 0.5 * px - 0.25 * py + 3000.0, atol=1e-3)
    assert np.isnan(elevation_at(dem, 900.0, 4900.0))


def test_profile_on_flat_terrain_has_the_earth_bulge() -> None:
    dem = Dem(np.full((10, 800), 100.0), Affine(30.0, 0.0, 0.0, 0.0, -30.0, 300.0), "EPSG:32648")
    profile = terrain_profile(dem, (15.0, 150.0), (20_015.0, 150.0))
    assert profile.distance_m[-1] == pytest.approx(20_000.0)
    assert np.diff(profile.distance_m).max() <= 30.0 + 1e-9
    np.testing.assert_allclose(profile.elevation_m, 100.0)
    mid = np.argmin(np.abs(profile.distance_m - 10_000.0))
    d1 = profile.distance_m[mid]
    expected = d1 * (20_000.0 - d1) / (2 * K_FACTOR * EARTH_RADIUS_M)
    assert profile.bulge_m[mid] == pytest.approx(expected)
    assert expected == pytest.approx(5.886, abs=0.01)
    assert profile.bulge_m[0] == profile.bulge_m[-1] == 0.0
    np.testing.assert_allclose(profile.effective_m, profile.elevation_m + profile.bulge_m)


def test_synthetic_dem_is_deterministic() -> None:
    a = synthetic_dem((64, 80), seed=4, relief_m=500.0, base_m=100.0)
    b = synthetic_dem((64, 80), seed=4, relief_m=500.0, base_m=100.0)
    np.testing.assert_array_equal(a.elevation_m, b.elevation_m)
    assert a.elevation_m.min() == pytest.approx(100.0) and a.elevation_m.max() == pytest.approx(
        600.0
    )
    assert not math.isclose(
        float(synthetic_dem((64, 80), seed=5).elevation_m.mean()), float(a.elevation_m.mean())
    )
