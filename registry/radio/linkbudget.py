"""Link budget: parameters, resource blocks, noise, rate mapping, service classes.

Array functions here accept scalars or numpy arrays (they broadcast).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Technology = Literal["4G", "5G"]

# Transmission bandwidth configuration N_RB per channel bandwidth (MHz).
LTE_RESOURCE_BLOCKS: dict[float, int] = {  # TS 36.101 Table 5.6-1
    1.4: 6,
    3.0: 15,
    5.0: 25,
    10.0: 50,
    15.0: 75,
    20.0: 100,
}
NR_RESOURCE_BLOCKS: dict[int, dict[float, int]] = {  # TS 38.101-1 Table 5.3.2-1 (FR1)
    15: {
        5.0: 25,
        10.0: 52,
        15.0: 79,
        20.0: 106,
        25.0: 133,
        30.0: 160,
        35.0: 188,
        40.0: 216,
        45.0: 242,
        50.0: 270,
    },
    30: {
        5.0: 11,
        10.0: 24,
        15.0: 38,
        20.0: 51,
        25.0: 65,
        30.0: 78,
        35.0: 92,
        40.0: 106,
        45.0: 119,
        50.0: 133,
        60.0: 162,
        70.0: 189,
        80.0: 217,
        90.0: 245,
        100.0: 273,
    },
    60: {
        10.0: 11,
        15.0: 18,
        20.0: 24,
        25.0: 31,
        30.0: 38,
        35.0: 44,
        40.0: 51,
        45.0: 58,
        50.0: 65,
        60.0: 79,
        70.0: 93,
        80.0: 107,
        90.0: 121,
        100.0: 135,
    },
}
SUBCARRIERS_PER_RB = 12  # TS 36.211 / TS 38.211
LTE_SCS_KHZ = 15  # TS 36.211

SERVICE_CLASSES: tuple[str, ...] = (
    "none",
    "data_only",
    "basic_live",
    "sd_live",
    "hd_live",
    "fullhd_live",
)
"""Service class names from worst to best; a class's uint8 code is its index here."""
SERVICE_CLASSES_BEST_FIRST: tuple[str, ...] = SERVICE_CLASSES[::-1]
"""The same, from best to worst (tables, choices)."""
LIVE_CLASSES: tuple[str, ...] = tuple(c for c in SERVICE_CLASSES if c.endswith("_live"))
"""Classes that can stream live, worst to best: the qualities a seller or event asks for."""
SERVICE_CLASS_NODATA = 255
"""uint8 code for cells without terrain data."""


@dataclass(frozen=True)
class RadioParams:
    """Receiver-side and downlink constants (defaults with their sources)."""

    ue_height_m: float = 1.5  # h_UT, TR 38.901 Table 7.4.1-1
    ue_antenna_gain_dbi: float = 0.0  # TR 36.942 Table 4.3 (UE antenna gain)
    ue_noise_figure_db: float = 9.0  # TR 36.942 Table 4.3 (UE noise figure)
    thermal_noise_dbm_hz: float = -174.0  # kT at 290 K
    nr_scs_khz: int = 30  # NR subcarrier spacing; 30 kHz for n41 100 MHz, TS 38.101-1
    dl_interference_load: float = 1.0  # share of co-channel REs transmitted (1 = full load)
    front_to_back_db: float = 25.0  # A_m, TR 36.814 Table A.2.1.1-2
    side_lobe_v_db: float = 20.0  # SLA_v, TR 36.814 Table A.2.1.1-2


@dataclass(frozen=True)
class UplinkParams:
    """Uplink budget and the TR 36.942 Annex A rate mapping (uplink column)."""

    ue_power_dbm: float = 23.0  # power class 3, TS 36.101 / TS 38.101-1
    hpue_power_dbm: float = 26.0  # power class 2 (HPUE, n41), TS 38.101-1
    hpue_5g: bool = False  # phones use HPUE on 5G sectors
    site_noise_figure_db: float = 5.0  # base station noise figure, TR 36.942 Table 4.4
    interference_margin_db: float = 3.0  # uplink noise rise from other cells (planning value)
    prb_share: float = 0.5  # share of the carrier's uplink PRBs given to the streaming phone
    time_fraction_4g: float = 1.0  # FDD (B3): uplink all the time
    time_fraction_5g: float = 0.2  # TDD (n41) DDDSU frame: 1 uplink slot in 5
    alpha: float = 0.4  # attenuation, TR 36.942 Table A.2 (UL; DL is 0.6)
    sinr_min_db: float = -10.0  # SINR_MIN, TR 36.942 Table A.2
    max_spectral_efficiency_bps_hz: float = 2.0  # Thr_MAX (UL, 16QAM 3/4), TR 36.942 Table A.2
    shadow_sigma_db: float = 8.0  # lognormal shadowing sigma, TR 38.901 Table 7.4.1-1 RMa NLOS
    location_reliability: float = 0.9  # probability the sustained rate is reached at a location

    def __post_init__(self) -> None:
        if self.alpha <= 0.0:
            raise ValueError("alpha must be positive")
        if self.max_spectral_efficiency_bps_hz <= 0.0:
            raise ValueError("max_spectral_efficiency_bps_hz must be positive")
        if not 0.0 < self.location_reliability < 1.0:
            raise ValueError("location_reliability must be in (0, 1)")
        if not 0.0 < self.prb_share <= 1.0:
            raise ValueError("prb_share must be in (0, 1]")

    @property
    def sinr_max_db(self) -> float:
        """SINR_MAX, where alpha log2(1 + SINR) reaches Thr_MAX (TR 36.942 Annex A.1).

        Examples
        --------
        >>> round(UplinkParams().sinr_max_db, 2)  # 10 log10(2^(2.0 / 0.4) - 1)
        14.91
        """
        return 10.0 * math.log10(2.0 ** (self.max_spectral_efficiency_bps_hz / self.alpha) - 1.0)


@dataclass(frozen=True)
class ServiceClassThresholds:
    """Minimum sustained uplink rate per service class, Mbps (stream bitrate x 1.5)."""

    fullhd_live_mbps: float = 8.0  # 1080p30
    hd_live_mbps: float = 4.0  # 720p30
    sd_live_mbps: float = 2.5  # 480p30
    basic_live_mbps: float = 1.0  # 360p, video calls

    def __post_init__(self) -> None:
        levels = (self.basic_live_mbps, self.sd_live_mbps, self.hd_live_mbps, self.fullhd_live_mbps)
        if not 0.0 < levels[0] <= levels[1] <= levels[2] <= levels[3]:
            raise ValueError("thresholds must be positive and non-decreasing by class")


def subcarrier_spacing_khz(technology: Technology, radio: RadioParams) -> int:
    """Subcarrier spacing of a technology: 15 kHz for LTE, `radio.nr_scs_khz` for NR."""
    return LTE_SCS_KHZ if technology == "4G" else radio.nr_scs_khz


def resource_blocks(technology: Technology, bandwidth_mhz: float, scs_khz: int) -> int:
    """Number of resource blocks N_RB of a carrier (TS 36.101 / TS 38.101-1 tables).

    Examples
    --------
    >>> resource_blocks("4G", 20.0, 15), resource_blocks("5G", 100.0, 30)
    (100, 273)
    """
    table = LTE_RESOURCE_BLOCKS if technology == "4G" else NR_RESOURCE_BLOCKS.get(scs_khz, {})
    n_rb = table.get(float(bandwidth_mhz))
    if n_rb is None:
        raise ValueError(f"no {technology} carrier of {bandwidth_mhz} MHz at {scs_khz} kHz")
    return n_rb


def power_per_re_dbm(total_power_dbm: float, n_rb: int) -> float:
    """Transmit power per resource element, power spread evenly over 12 N_RB subcarriers.

    Examples
    --------
    >>> round(power_per_re_dbm(46.0, 100), 2)
    15.21
    """
    return total_power_dbm - 10.0 * math.log10(SUBCARRIERS_PER_RB * n_rb)


def noise_power_dbm(
    bandwidth_hz: ArrayLike, noise_figure_db: float, density_dbm_hz: float = -174.0
) -> np.ndarray:
    """Thermal noise plus receiver noise figure over a bandwidth, dBm.

    Examples
    --------
    >>> round(float(noise_power_dbm(15e3, 9.0)), 2)
    -123.24
    """
    return np.asarray(density_dbm_hz + 10.0 * np.log10(bandwidth_hz) + noise_figure_db)


def spectral_efficiency_bps_hz(sinr_db: ArrayLike, params: UplinkParams) -> np.ndarray:
    """Truncated attenuated Shannon bound, 3GPP TR 36.942 Annex A.1.

    0 below SINR_MIN, alpha log2(1 + SINR) from SINR_MIN up to SINR_MAX,
    Thr_MAX from SINR_MAX on. NaN SINR gives 0.

    Examples
    --------
    >>> spectral_efficiency_bps_hz([-20.0, 0.0, 30.0], UplinkParams()).round(3)
    array([0. , 0.4, 2. ])
    """
    sinr = np.asarray(sinr_db, dtype=np.float64)
    shannon = params.alpha * np.log2(1.0 + 10.0 ** (np.minimum(sinr, params.sinr_max_db) / 10.0))
    se = np.where(sinr >= params.sinr_max_db, params.max_spectral_efficiency_bps_hz, shannon)
    return np.where(sinr >= params.sinr_min_db, se, 0.0)


def shadow_margin_db(sigma_db: float, reliability: float) -> float:
    """Lognormal shadow-fading margin for a location reliability: sigma * Phi^-1(p).

    Examples
    --------
    >>> round(shadow_margin_db(8.0, 0.9), 2)
    10.25
    """
    return sigma_db * NormalDist().inv_cdf(reliability)


@dataclass(frozen=True)
class UplinkBudget:
    """Per-carrier uplink constants for the streaming phone."""

    ue_power_dbm: float
    noise_dbm: float  # thermal + site noise figure over the allocated bandwidth
    bandwidth_hz: float  # allocated bandwidth
    time_fraction: float  # share of time the uplink is available (TDD)


def uplink_budget(
    technology: Technology, bandwidth_mhz: float, radio: RadioParams, uplink: UplinkParams
) -> UplinkBudget:
    """Uplink constants of a phone on a carrier: power, allocated PRBs, noise.

    Examples
    --------
    >>> b = uplink_budget("4G", 20.0, RadioParams(), UplinkParams())
    >>> b.bandwidth_hz, round(b.noise_dbm, 2)
    (9000000.0, -99.46)
    """
    scs = subcarrier_spacing_khz(technology, radio)
    n_prb = max(1, math.floor(uplink.prb_share * resource_blocks(technology, bandwidth_mhz, scs)))
    bandwidth_hz = n_prb * SUBCARRIERS_PER_RB * scs * 1e3
    five_g = technology == "5G"
    return UplinkBudget(
        ue_power_dbm=uplink.hpue_power_dbm if five_g and uplink.hpue_5g else uplink.ue_power_dbm,
        noise_dbm=float(
            noise_power_dbm(bandwidth_hz, uplink.site_noise_figure_db, radio.thermal_noise_dbm_hz)
        ),
        bandwidth_hz=bandwidth_hz,
        time_fraction=uplink.time_fraction_5g if five_g else uplink.time_fraction_4g,
    )


def uplink_rate_mbps(
    coupling_gain_db: ArrayLike,
    *,
    ue_power_dbm: ArrayLike,
    noise_dbm: ArrayLike,
    bandwidth_hz: ArrayLike,
    time_fraction: ArrayLike,
    radio: RadioParams,
    uplink: UplinkParams,
) -> np.ndarray:
    """Sustained uplink rate at the configured location reliability, Mbps.

    SINR = P_UE + CG + G_UE - N - interference margin - shadow margin, where the
    coupling gain CG = site antenna gain - path loss - clutter margin; the rate
    is bandwidth x time fraction x `spectral_efficiency_bps_hz(SINR)`.
    Budget arguments come from `uplink_budget` and broadcast (per cell arrays
    are fine).

    Examples
    --------
    >>> b = uplink_budget("4G", 20.0, RadioParams(), UplinkParams())
    >>> rate = uplink_rate_mbps(-100.0, ue_power_dbm=b.ue_power_dbm, noise_dbm=b.noise_dbm,
    ...     bandwidth_hz=b.bandwidth_hz, time_fraction=b.time_fraction,
    ...     radio=RadioParams(), uplink=UplinkParams())
    >>> round(float(rate), 2)
    11.6
    """
    margin = uplink.interference_margin_db + shadow_margin_db(
        uplink.shadow_sigma_db, uplink.location_reliability
    )
    sinr = (
        np.asarray(ue_power_dbm)
        + np.asarray(coupling_gain_db)
        + radio.ue_antenna_gain_dbi
        - np.asarray(noise_dbm)
        - margin
    )
    se = spectral_efficiency_bps_hz(sinr, uplink)
    rate = se * np.asarray(bandwidth_hz) * np.asarray(time_fraction) / 1e6
    return np.asarray(rate, dtype=np.float64)


def service_class_codes(
    rate_mbps: ArrayLike, thresholds: ServiceClassThresholds | None = None
) -> np.ndarray:
    """Service class code (index into `SERVICE_CLASSES`) of sustained uplink rates.

    Examples
    --------
    >>> [SERVICE_CLASSES[c] for c in service_class_codes([0.0, 0.5, 3.0, 9.0])]
    ['none', 'data_only', 'sd_live', 'fullhd_live']
    """
    t = thresholds or ServiceClassThresholds()
    r = np.asarray(rate_mbps, dtype=np.float64)
    codes = (
        (r > 0.0).astype(np.uint8)
        + (r >= t.basic_live_mbps)
        + (r >= t.sd_live_mbps)
        + (r >= t.hd_live_mbps)
        + (r >= t.fullhd_live_mbps)
    )
    return codes.astype(np.uint8)
