"""3GPP TR 36.814 antenna pattern."""

from __future__ import annotations

import math

import numpy as np
import pytest

from registry.radio.antenna import (
    antenna_pattern_db,
    sector_gain_dbi,
    tilted_gain_dbi,
    view_angles,
    wrap_deg,
)

H_BW, V_BW = 65.0, 7.0


def test_boresight_is_zero_db() -> None:
    assert antenna_pattern_db(0.0, 0.0, H_BW, V_BW) == 0.0


@pytest.mark.parametrize(("phi", "theta"), [(32.5, 0.0), (-32.5, 0.0), (0.0, 3.5), (0.0, -3.5)])
def test_three_db_points(phi: float, theta: float) -> None:
    assert antenna_pattern_db(phi, theta, H_BW, V_BW) == pytest.approx(-3.0, abs=1e-12)


def test_back_lobe_and_floors() -> None:
    assert antenna_pattern_db(180.0, 0.0, H_BW, V_BW) == -25.0  # A_m
    assert antenna_pattern_db(0.0, 40.0, H_BW, V_BW) == -20.0  # SLA_v
    assert antenna_pattern_db(90.0, 40.0, H_BW, V_BW) == -25.0  # combined floor
    assert antenna_pattern_db(180.0, 0.0, H_BW, V_BW, 30.0, 20.0) == -30.0


def test_sector_gain_azimuth_and_tilts() -> None:
    args = (H_BW, V_BW, 17.0)
    # boresight: bearing = azimuth, depression = total downtilt
    assert sector_gain_dbi(95.0, 6.0, 95.0, 2.0, 4.0, *args) == pytest.approx(17.0)
    # azimuth wraps around north
    assert sector_gain_dbi(350.0, 0.0, 10.0, 0.0, 0.0, *args) == pytest.approx(
        17.0 + antenna_pattern_db(-20.0, 0.0, H_BW, V_BW)
    )
    # electrical tilt lowers the beam everywhere; mechanical tilt tilts it up behind the panel
    behind_elec = sector_gain_dbi(180.0, 4.0, 0.0, 0.0, 4.0, *args)
    behind_mech = sector_gain_dbi(180.0, -4.0, 0.0, 4.0, 0.0, *args)
    assert behind_elec == pytest.approx(17.0 - 25.0)
    assert behind_mech == pytest.approx(17.0 - 25.0)
    assert sector_gain_dbi(90.0, 0.0, 0.0, 6.0, 0.0, *args) == pytest.approx(
        17.0 + antenna_pattern_db(90.0, 0.0, H_BW, V_BW)
    )


def test_kernel_form_equals_sector_gain() -> None:
    """The coverage kernels' form (`view_angles`, `wrap_deg`, cos φ from the direction
    vector, `tilted_gain_dbi`) gives `sector_gain_dbi` at 20,000 random points and sectors,
    the antenna's own position included."""
    rng = np.random.default_rng(3)
    for k in range(20_000):
        east, north = (0.0, 0.0) if k == 0 else tuple(rng.uniform(-20_000.0, 20_000.0, 2))
        az, mtilt, etilt = rng.uniform(0.0, 360.0), rng.uniform(-2.0, 8.0), rng.uniform(0.0, 8.0)
        drop = rng.uniform(-500.0, 900.0)
        bearing, depression, un, ue = view_angles(east, north, drop, 6e-8)
        d2 = east * east + north * north
        ref_bearing = math.degrees(math.atan2(east, north))
        ref_depression = math.degrees(math.atan2(drop + d2 * 6e-8, math.sqrt(d2)))
        assert (bearing, depression) == pytest.approx((ref_bearing, ref_depression), abs=1e-12)
        cos_phi = un * math.cos(math.radians(az)) + ue * math.sin(math.radians(az))
        fast = tilted_gain_dbi(
            wrap_deg(bearing - az), cos_phi, depression, mtilt, etilt, H_BW, V_BW, 17.0, 25.0, 20.0
        )
        reference = sector_gain_dbi(ref_bearing, ref_depression, az, mtilt, etilt, H_BW, V_BW, 17.0)
        assert fast == pytest.approx(reference, abs=1e-9)
    assert [wrap_deg(a) for a in (-540.0, -180.0, 179.5, 180.0, 539.0, 1000.0)] == [
        -180.0,
        -180.0,
        179.5,
        -180.0,
        179.0,
        -80.0,
    ]
