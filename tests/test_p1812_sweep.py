"""The P.1812 coverage sweep (`registry.radio._p1812_kernels`) against the per-profile model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine

from registry.radio import _p1812_kernels as kernels
from registry.radio._kernels import ray_profile
from registry.radio.coverage import CoverageParams, point_path_loss, site_path_loss
from registry.radio.p1812 import p1812_loss
from registry.terrain import Dem, synthetic_dem

CELL = 30.0
N = 42  # window half-width (a multiple of the analysis steps): 1.26 km
HTG = 30.0
RX_H = 1.5


def hills() -> np.ndarray:
    dem = synthetic_dem((2 * N + 1, 2 * N + 1), cell_size_m=CELL, seed=3, relief_m=600.0)
    return np.ascontiguousarray(dem.elevation_m, dtype=np.float32)


def sweep(win: np.ndarray, step: int, freq_mhz: float, p_pct: float = 50.0) -> np.ndarray:
    half = step // 2
    out = np.full((1, 2 * N // step + 1, 2 * N // step + 1), np.nan, dtype=np.float32)
    kernels.p1812_sweep(
        win, N, step, half, half, CELL, CELL, float(win[N, N]) + HTG, RX_H, 0.0, N * CELL,
        np.array([freq_mhz]), out, p_pct,
    )  # fmt: skip
    return out[0]


def per_profile_errors(win: np.ndarray, step: int, freq_mhz: float, p_pct: float) -> np.ndarray:
    """|sweep - p1812_loss| (dB) over the lattice cells, each on the profile the sweep used."""
    loss = sweep(win, step, freq_mhz, p_pct)
    d = np.empty(N + 1)
    z = np.empty(N + 1)
    errors = []
    for i, j in zip(*np.nonzero(np.isfinite(loss)), strict=True):
        dr, dc = step // 2 + i * step - N, step // 2 + j * step - N
        count = ray_profile(win, N, step, CELL, CELL, dr, dc, d, z)
        if count < 3:  # the site and its neighbours: no intermediate point
            continue
        ref = p1812_loss(
            d[:count] / 1000.0,
            z[:count],
            htg_m=HTG,
            hrg_m=RX_H,
            f_ghz=freq_mhz / 1000.0,
            p_pct=p_pct,
        )
        errors.append(abs(float(loss[i, j]) - ref.lb_db))
    return np.array(errors)


@pytest.mark.parametrize("step", [1, 3])
def test_sweep_matches_the_per_profile_model(step: int) -> None:
    """On the sweep's own ray profile the loss differs only where the largest line-of-sight
    ν is negative and on a sample under the ray's hull (measured: all cells within 0.004 dB,
    95 % within 1e-5 dB, the float32 rounding)."""
    errors = per_profile_errors(hills(), step, 1800.0, 50.0)
    assert errors.size > (1000 if step == 1 else 100)
    assert np.mean(errors <= 0.5) >= 0.95
    assert np.percentile(errors, 95) < 1e-4


def test_sweep_equals_the_per_profile_model_beyond_the_horizon() -> None:
    """On a 4 km window of 1,200 m relief, trans-horizon cells (the real profile's Bullington
    point above the line between the antennas: nothing approximated in the geometry) get the
    per-profile model's loss to float32 rounding, also where Ldsph > 0 and where the
    smooth-surface obstruction (eqs. 87-89) moves the effective heights."""
    n, step, freq_mhz = 135, 3, 1800.0  # n a multiple of step, as `window` makes it
    dem = synthetic_dem((2 * n + 1, 2 * n + 1), cell_size_m=CELL, seed=5, relief_m=1200.0)
    win = np.ascontiguousarray(dem.elevation_m, dtype=np.float32)
    z_tx = float(win[n, n]) + HTG
    out = np.full((1, 2 * n // step + 1, 2 * n // step + 1), np.nan, dtype=np.float32)
    kernels.p1812_sweep(
        win, n, step, 1, 1, CELL, CELL, z_tx, RX_H, 0.0, n * CELL, np.array([freq_mhz]), out
    )
    d, z = np.empty(n + 1), np.empty(n + 1)
    rng = np.random.default_rng(2)
    cells = list(zip(*np.nonzero(np.isfinite(out[0])), strict=True))
    errors, with_ldsph, obstructed = [], 0, 0
    for k in rng.permutation(len(cells))[:3000]:
        i, j = cells[k]
        count = ray_profile(win, n, step, CELL, CELL, 1 + i * step - n, 1 + j * step - n, d, z)
        if count < 3:
            continue
        dk, zk = d[:count] / 1000.0, z[:count]
        ref = p1812_loss(dk, zk, htg_m=HTG, hrg_m=RX_H, f_ghz=freq_mhz / 1000.0, p_pct=50.0)
        di = dk[1:-1]
        bulge = 500.0 / ref.ae_km * di * (dk[-1] - di)
        if np.max((zk[1:-1] + bulge - z_tx) / di) < (zk[-1] + RX_H - z_tx) / dk[-1]:
            continue  # line of sight
        errors.append(abs(float(out[0, i, j]) - ref.lb_db))
        with_ldsph += ref.ldsph_db > 0.0
        obstructed += ref.hstd_m < min(ref.hst_ls_m, zk[0]) or ref.hsrd_m < min(
            ref.hsr_ls_m, zk[-1]
        )
    assert len(errors) > 300 and with_ldsph > 20 and obstructed > 20
    assert max(errors) < 1e-4


def test_sweep_is_exact_on_a_flat_dem() -> None:
    """Flat terrain: every sample is a hull vertex, nothing is approximated."""
    errors = per_profile_errors(np.full((2 * N + 1, 2 * N + 1), 250.0, np.float32), 1, 900.0, 50.0)
    assert errors.size > 1000
    assert errors.max() < 1e-4  # float32 output


def test_low_time_percentage() -> None:
    """p < 50 %: the hulls for both effective radii, and ducting (which matters on short
    paths at 10 % of the time)."""
    errors = per_profile_errors(hills(), 1, 900.0, 10.0)
    assert np.mean(errors <= 0.5) >= 0.95
    assert np.percentile(errors, 95) < 1e-4


def test_point_losses_reproduce_the_sweep() -> None:
    win = hills()
    for step in (1, 3):
        loss = sweep(win, step, 1800.0)
        i, j = np.mgrid[0 : loss.shape[0], 0 : loss.shape[1]]
        drs = (step // 2 + i * step - N).ravel()
        dcs = (step // 2 + j * step - N).ravel()
        out = np.empty(drs.size)
        kernels.p1812_point_losses(
            win, N, step, CELL, CELL, float(win[N, N]) + HTG, RX_H, N * CELL, drs, dcs, 1800.0,
            out,
        )  # fmt: skip
        np.testing.assert_allclose(out, loss.ravel().astype(np.float64), atol=1e-4)


def test_obstruction_from_the_lowered_hull_is_the_profiles() -> None:
    """hobs, αobt and αobr (eqs. 87–88) from the hull of the heights lowered for ae equal
    eqs. (87)–(88) over every sample, on 3,000 obstructed random 5–25 km profiles; in a
    share of them the raw maximum is not at the lowered hull's tangent vertex."""
    rng = np.random.default_rng(11)
    a_m = 8_500_000.0
    hd, hz, sc = np.empty((3, 400))
    moved = checked = 0
    while checked < 3000:
        n = int(rng.integers(20, 300))
        seg = rng.uniform(5_000.0, 25_000.0) / n
        x = seg * np.arange(n + 1)
        z = np.cumsum(rng.normal(0.0, 25.0, n + 1)) + rng.uniform(0.0, 300.0) * np.sin(
            x / rng.uniform(1_000.0, 8_000.0)
        )
        d, hts, hrs = x[-1], z[0] + 30.0, z[-1] + 1.5
        m = 0
        for i in range(1, n):
            m = kernels._hull_push(hd, hz, m, x[i], z[i] - x[i] ** 2 / (2.0 * a_m))
        z_rx = hrs - d * d / (2.0 * a_m)
        i_t = kernels._tangent_from_left(hd, hz, m, 0.0, hts)
        los, _, s_t, s_r, i_t, i_r = kernels._real_geometry(hd, hz, m, sc, d, hts, z_rx, i_t)
        if los:
            continue
        checked += 1
        h = z[1:-1] - (hts * (d - x[1:-1]) + hrs * x[1:-1]) / d  # Hi, eq. (87)
        hobs, aobt, aobr = kernels._obstruction(
            hd, hz, m, a_m, d, hts, hrs, z_rx, i_t, s_t, i_r, s_r
        )
        assert hobs == pytest.approx(h.max(), abs=1e-9)
        if hobs > 0.0:
            assert aobt == pytest.approx((h / x[1:-1]).max(), abs=1e-12)
            assert aobr == pytest.approx((h / (d - x[1:-1])).max(), abs=1e-12)
            moved += int(np.argmax(h / x[1:-1]) + 1 != round(hd[i_t] / seg))
            moved += int(np.argmax(h / (d - x[1:-1])) + 1 != round(hd[i_r] / seg))
    assert moved >= 20


def test_bullington_tail_table() -> None:
    """The sweep's tabulated Bullington tail (J(ν) and eq. 21) is within 6.7e-7 + 6.2e-8
    (10 + 0.02 d) dB of the formulas over the table (1e-6 dB up to 500 km), equal to them
    beyond it and for NaN, and 0 at ν <= -0.78."""
    from numba import njit

    from registry.radio.diffraction import knife_edge_loss_db
    from registry.radio.p1812 import bullington_tail_db

    @njit
    def both(nus: np.ndarray, d_km: float) -> tuple[np.ndarray, np.ndarray]:
        fast, exact = np.empty_like(nus), np.empty_like(nus)
        for i in range(nus.size):
            fast[i] = kernels._bullington_tail(nus[i], d_km)
            exact[i] = bullington_tail_db(knife_edge_loss_db(nus[i]), d_km)
        return fast, exact

    rng = np.random.default_rng(5)
    nus = np.concatenate([rng.uniform(-0.78, 127.2, 500_000), [-0.78 + 1e-12, 0.0, 1.0]])
    for d_km in (0.5, 20.0, 100.0, 500.0, 3000.0):
        fast, exact = both(nus, d_km)
        assert np.abs(fast - exact).max() < 6.7e-7 + 6.2e-8 * (10.0 + 0.02 * d_km)
        fast, exact = both(np.array([-3.0, -0.78, 127.3, 400.0, np.nan]), d_km)
        np.testing.assert_array_equal(fast, exact)


def test_out_of_range_parameters_are_refused() -> None:
    win = hills()
    with pytest.raises(ValueError, match="30-6000 MHz"):
        sweep(win, 1, 26_000.0)
    with pytest.raises(ValueError, match="1-50 %"):
        sweep(win, 1, 1800.0, p_pct=70.0)


def test_coverage_model_p1812() -> None:
    """COVERAGE_MODEL=p1812 runs the sweep; point losses read the same values; a ridge
    shadows the cells behind it."""
    z = np.full((161, 61), 300.0)
    z[50:53, :] = 420.0  # ridge 30 cells north of the site
    dem = Dem(z, Affine(CELL, 0, 0, 0, -CELL, 161 * CELL), "EPSG:32648")
    x, y = dem.transform @ (30.5, 80.5)
    params = CoverageParams(max_radius_m=2000.0, model="p1812")
    loss = site_path_loss(dem, x, y, antenna_height_m=HTG, freqs_mhz=[900.0], params=params)
    rows = np.array([80 - 45, 80 + 45, 80 - 10])
    cols = np.array([30, 30, 40])
    points = point_path_loss(
        dem, x, y, antenna_height_m=HTG, freq_mhz=900.0, rows=rows, cols=cols, params=params
    )
    grid = loss.loss_db[0, rows - loss.row0, cols - loss.col0]
    np.testing.assert_allclose(points, grid)
    behind, open_side, near = grid
    assert behind > open_side + 10.0
    d_open = 45 * CELL / 1000.0
    free = 92.4 + 20 * math.log10(0.9) + 10 * math.log10(d_open**2 + (HTG - RX_H) ** 2 / 1e6)
    assert open_side == pytest.approx(free, abs=1.0)  # open flat ground: close to free space
    assert near < open_side
    with pytest.raises(ValueError):
        CoverageParams(model="p1813")  # type: ignore[arg-type]


@pytest.mark.parametrize("model", ["p1812", "deygout"])
def test_site_on_a_dem_void_starts_its_profiles_at_its_ground(model: str) -> None:
    """A void under the site, with the site's ground elevation given: the losses are those of
    the DEM with that cell at the given ground (the site's own profiles start there)."""
    z = hills().astype(np.float64)
    dem = Dem(z, Affine(CELL, 0, 0, 0, -CELL, z.shape[0] * CELL), "EPSG:32648")
    x, y = dem.transform @ (N + 0.5, N + 0.5)
    holed = z.copy()
    holed[N, N] = np.nan
    params = CoverageParams(max_radius_m=N * CELL, model=model)

    def loss(elevation: np.ndarray) -> np.ndarray:
        return site_path_loss(
            Dem(elevation, dem.transform, dem.crs),
            x,
            y,
            antenna_height_m=HTG,
            freqs_mhz=[1800.0],
            ground_elevation_m=float(z[N, N]),
            params=params,
        ).loss_db

    filled = loss(z)
    assert np.isfinite(filled).sum() > 100
    np.testing.assert_array_equal(loss(holed), filled)
