"""Path loss formulas: reference values and independent transcriptions of the formulas."""

from __future__ import annotations

import math

import pytest

from registry.radio.pathloss import cost231_hata_db, free_space_loss_db, rma_path_loss_db


def test_free_space_loss_reference_and_slope() -> None:
    # 32.45 + 20 log10(f MHz) + 20 log10(d km), ITU-R P.525
    assert free_space_loss_db(1000.0, 1800.0) == pytest.approx(
        32.45 + 20 * math.log10(1800), abs=0.01
    )
    assert free_space_loss_db(2000.0, 900.0) - free_space_loss_db(1000.0, 900.0) == pytest.approx(
        20 * math.log10(2), abs=1e-9
    )


def test_rma_reference_values() -> None:
    # TR 38.901 RMa, f = 1.8 GHz, h_BS = 35 m, h_UT = 1.5 m, h = 5 m, W = 20 m, d = 1 km
    assert rma_path_loss_db(1000.0, 1800.0, 35.0, 1.5, True) == pytest.approx(99.68, abs=0.005)
    assert rma_path_loss_db(1000.0, 1800.0, 35.0, 1.5, False) == pytest.approx(124.65, abs=0.005)


def _rma_reference(
    d2d: float, fc_ghz: float, hbs: float, hut: float, h: float, w: float
) -> tuple[float, float]:
    """TR 38.901 Table 7.4.1-1 transcribed independently: (LOS, NLOS) in dB."""
    d3d = math.hypot(d2d, hbs - hut)
    dbp = 2 * math.pi * hbs * hut * fc_ghz * 1e9 / 299_792_458.0

    def pl1(d: float) -> float:
        return (
            20 * math.log10(40 * math.pi * d * fc_ghz / 3)
            + min(0.03 * h**1.72, 10) * math.log10(d)
            - min(0.044 * h**1.72, 14.77)
            + 0.002 * math.log10(h) * d
        )

    los = pl1(d3d) if d2d <= dbp else pl1(dbp) + 40 * math.log10(d3d / dbp)
    nlos_prime = (
        161.04
        - 7.1 * math.log10(w)
        + 7.5 * math.log10(h)
        - (24.37 - 3.7 * (h / hbs) ** 2) * math.log10(hbs)
        + (43.42 - 3.1 * math.log10(hbs)) * (math.log10(d3d) - 3)
        + 20 * math.log10(fc_ghz)
        - (3.2 * (math.log10(11.75 * hut)) ** 2 - 4.97)
    )
    return los, max(los, nlos_prime)


@pytest.mark.parametrize(
    ("d2d", "f_mhz", "hbs", "hut", "h", "w"),
    [
        (50.0, 700.0, 25.0, 1.5, 5.0, 20.0),
        (800.0, 2600.0, 35.0, 1.5, 5.0, 20.0),
        (3000.0, 1800.0, 35.0, 1.5, 5.0, 20.0),  # beyond the LOS breakpoint (1979 m)
        (4500.0, 3500.0, 40.0, 2.0, 10.0, 30.0),
        (9000.0, 700.0, 30.0, 1.5, 5.0, 20.0),
    ],
)
def test_rma_equals_formula(
    d2d: float, f_mhz: float, hbs: float, hut: float, h: float, w: float
) -> None:
    los, nlos = _rma_reference(d2d, f_mhz / 1000, hbs, hut, h, w)
    assert rma_path_loss_db(d2d, f_mhz, hbs, hut, True, h, w) == pytest.approx(los, abs=1e-9)
    assert rma_path_loss_db(d2d, f_mhz, hbs, hut, False, h, w) == pytest.approx(nlos, abs=1e-9)


def test_rma_clamps_short_distances() -> None:
    assert rma_path_loss_db(1.0, 1800.0, 35.0, 1.5, True) == rma_path_loss_db(
        10.0, 1800.0, 35.0, 1.5, True
    )


def test_cost231_hata_reference_and_formula() -> None:
    assert cost231_hata_db(5000.0, 1800.0, 30.0, 1.5) == pytest.approx(160.82, abs=0.005)
    f, hb, hm, d_km, c = 1900.0, 45.0, 2.0, 12.0, 3.0
    a = (1.1 * math.log10(f) - 0.7) * hm - (1.56 * math.log10(f) - 0.8)
    expected = (
        46.3
        + 33.9 * math.log10(f)
        - 13.82 * math.log10(hb)
        - a
        + (44.9 - 6.55 * math.log10(hb)) * math.log10(d_km)
        + c
    )
    assert cost231_hata_db(d_km * 1000, f, hb, hm, c) == pytest.approx(expected, abs=1e-9)
