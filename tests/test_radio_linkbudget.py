"""Link budget: resource blocks, noise, rate mapping, uplink budget, service classes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from registry import models
from registry.radio.linkbudget import (
    LIVE_CLASSES,
    SERVICE_CLASSES,
    SERVICE_CLASSES_BEST_FIRST,
    RadioParams,
    ServiceClassThresholds,
    UplinkParams,
    noise_power_dbm,
    power_per_re_dbm,
    resource_blocks,
    service_class_codes,
    shadow_margin_db,
    spectral_efficiency_bps_hz,
    uplink_budget,
    uplink_rate_mbps,
)


@pytest.mark.parametrize(
    ("tech", "bw", "scs", "n_rb"),
    [
        ("4G", 20.0, 15, 100),
        ("4G", 10.0, 15, 50),
        ("4G", 1.4, 15, 6),
        ("5G", 100.0, 30, 273),
        ("5G", 20.0, 15, 106),
        ("5G", 40.0, 30, 106),
        ("5G", 100.0, 60, 135),
    ],
)
def test_resource_blocks(tech: str, bw: float, scs: int, n_rb: int) -> None:
    assert resource_blocks(tech, bw, scs) == n_rb  # type: ignore[arg-type]


def test_unknown_carrier_is_an_error() -> None:
    with pytest.raises(ValueError, match="no 5G carrier"):
        resource_blocks("5G", 100.0, 15)


def test_power_per_re_and_noise() -> None:
    assert power_per_re_dbm(46.0, 100) == pytest.approx(46.0 - 10 * math.log10(1200))
    assert float(noise_power_dbm(1e6, 5.0)) == pytest.approx(-174.0 + 60.0 + 5.0)


def test_truncated_shannon() -> None:
    p = UplinkParams()
    se = spectral_efficiency_bps_hz([-10.01, -10.0, 5.0, 14.91, 40.0], p)
    assert se[0] == 0.0
    assert se[1] == pytest.approx(p.alpha * math.log2(1 + 0.1))
    assert se[2] == pytest.approx(p.alpha * math.log2(1 + 10**0.5))
    assert se[3] == pytest.approx(
        p.max_spectral_efficiency_bps_hz, abs=1e-3
    )  # SINR_max meets Thr_max
    assert se[4] == p.max_spectral_efficiency_bps_hz
    assert spectral_efficiency_bps_hz(np.nan, p) == 0.0


@pytest.mark.parametrize(
    ("alpha", "thr_max", "sinr_max_db"), [(0.4, 2.0, 14.91), (0.6, 4.4, 22.05)]
)
def test_sinr_max_is_where_the_shannon_curve_meets_thr_max(
    alpha: float, thr_max: float, sinr_max_db: float
) -> None:
    """TR 36.942 Table A.2 gives alpha and Thr_MAX (UL 0.4 / 2.0, DL 0.6 / 4.4): SINR_MAX
    follows, and the mapping is continuous there."""
    p = UplinkParams(alpha=alpha, max_spectral_efficiency_bps_hz=thr_max)
    assert p.sinr_max_db == pytest.approx(sinr_max_db, abs=0.01)
    below, at = spectral_efficiency_bps_hz([p.sinr_max_db - 1e-9, p.sinr_max_db], p)
    assert below == pytest.approx(thr_max, rel=1e-9) and at == thr_max


def test_shadow_margin() -> None:
    assert shadow_margin_db(8.0, 0.5) == pytest.approx(0.0, abs=1e-12)
    assert shadow_margin_db(8.0, 0.95) == pytest.approx(8.0 * 1.6449, abs=1e-3)


def test_uplink_budget_hpue_and_tdd() -> None:
    radio = RadioParams()
    plain = uplink_budget("5G", 100.0, radio, UplinkParams())
    hpue = uplink_budget("5G", 100.0, radio, UplinkParams(hpue_5g=True))
    lte = uplink_budget("4G", 20.0, radio, UplinkParams(hpue_5g=True))
    assert (plain.ue_power_dbm, hpue.ue_power_dbm, lte.ue_power_dbm) == (23.0, 26.0, 23.0)
    assert plain.bandwidth_hz == 136 * 12 * 30e3  # floor(0.5 x 273) PRBs of 360 kHz
    assert (plain.time_fraction, lte.time_fraction) == (0.2, 1.0)


def test_uplink_rate_monotonic_and_reliability() -> None:
    radio = RadioParams()
    b = uplink_budget("4G", 20.0, radio, UplinkParams())
    kwargs = {
        "ue_power_dbm": b.ue_power_dbm,
        "noise_dbm": b.noise_dbm,
        "bandwidth_hz": b.bandwidth_hz,
        "time_fraction": b.time_fraction,
        "radio": radio,
    }
    cg = np.linspace(-150.0, -60.0, 50)
    rate = uplink_rate_mbps(cg, uplink=UplinkParams(), **kwargs)
    assert np.all(np.diff(rate) >= 0)
    assert rate[0] == 0.0
    assert rate[-1] == pytest.approx(2.0 * 9.0)  # Thr_max x 50 PRBs
    safer = uplink_rate_mbps(cg, uplink=UplinkParams(location_reliability=0.99), **kwargs)
    assert np.all(safer <= rate)


def test_class_orders_derive_from_one_list() -> None:
    assert tuple(reversed(SERVICE_CLASSES)) == SERVICE_CLASSES_BEST_FIRST
    assert LIVE_CLASSES == ("basic_live", "sd_live", "hd_live", "fullhd_live")
    assert models.SERVICE_CLASSES == SERVICE_CLASSES_BEST_FIRST


def test_service_classes_default_and_custom() -> None:
    rates = [0.0, 0.1, 1.0, 2.5, 3.9, 4.0, 8.0, 50.0]
    names = [SERVICE_CLASSES[c] for c in service_class_codes(rates)]
    assert names == [
        "none",
        "data_only",
        "basic_live",
        "sd_live",
        "sd_live",
        "hd_live",
        "fullhd_live",
        "fullhd_live",
    ]
    strict = ServiceClassThresholds(
        fullhd_live_mbps=20.0, hd_live_mbps=10.0, sd_live_mbps=5.0, basic_live_mbps=2.0
    )
    assert [SERVICE_CLASSES[c] for c in service_class_codes([1.0, 8.0], strict)] == [
        "data_only",
        "sd_live",
    ]


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        ServiceClassThresholds(hd_live_mbps=10.0)
    with pytest.raises(ValueError):
        UplinkParams(location_reliability=1.0)
    with pytest.raises(ValueError, match="alpha"):
        UplinkParams(alpha=0.0)
    with pytest.raises(ValueError, match="max_spectral_efficiency"):
        UplinkParams(max_spectral_efficiency_bps_hz=-1.0)
