"""Basic transmission loss models (scalar formulas).

Each function is plain Python on floats so that it is both the documented
reference and, compiled with numba, the code the coverage kernels run.
Distances are horizontal (2D) unless named otherwise; frequencies in MHz.
"""

from __future__ import annotations

import math

from numba.extending import register_jitable

SPEED_OF_LIGHT_M_S = 299_792_458.0  # exact (SI)
MIN_DISTANCE_M = 10.0  # TR 38.901 Table 7.4.1-1: RMa valid from d2D = 10 m
_LOG10_E = 1.0 / math.log(10.0)


@register_jitable
def log10(x: float) -> float:
    """log10(x) through the natural logarithm, within an ulp of `math.log10`: glibc's log10
    is a second call around log, which cost 5 % of the P.1812 coverage sweep."""
    return math.log(x) * _LOG10_E


@register_jitable
def free_space_loss_db(distance_m: float, freq_mhz: float) -> float:
    """Free-space basic transmission loss, ITU-R P.525: 20 log10(4 pi d / lambda).

    Parameters
    ----------
    distance_m : float
        Straight-line (3D) distance in metres, > 0.
    freq_mhz : float
        Carrier frequency in MHz.

    Returns
    -------
    float
        Loss in dB.

    Examples
    --------
    >>> round(free_space_loss_db(1000.0, 1800.0), 2)
    97.55
    """
    return 20.0 * math.log10(4.0 * math.pi * distance_m * freq_mhz * 1e6 / SPEED_OF_LIGHT_M_S)


@register_jitable
def rma_path_loss_db(
    distance_m: float,
    freq_mhz: float,
    h_bs_m: float,
    h_ut_m: float,
    los: bool,
    building_height_m: float = 5.0,
    street_width_m: float = 20.0,
) -> float:
    """3GPP TR 38.901 Table 7.4.1-1 rural macro (RMa) path loss, LOS or NLOS.

    LOS uses PL1 up to the breakpoint d_BP = 2 pi h_BS h_UT f_c / c and PL2
    beyond it; NLOS is max(PL_LOS, PL'_NLOS). Distances below 10 m are
    evaluated at 10 m; beyond the validity range (LOS 10 km, NLOS 5 km) the
    formulas are extrapolated.

    Parameters
    ----------
    distance_m : float
        Horizontal distance d2D in metres.
    freq_mhz : float
        Carrier frequency in MHz (TR 38.901 RMa: 0.5-30 GHz; used down to 700 MHz).
    h_bs_m, h_ut_m : float
        Base-station and user antenna heights above ground in metres.
    los : bool
        True for line of sight (decided from the terrain profile by the caller).
    building_height_m : float
        Average building height h (default 5 m, TR 38.901).
    street_width_m : float
        Average street width W (default 20 m, TR 38.901).

    Returns
    -------
    float
        Path loss in dB.

    Examples
    --------
    >>> round(rma_path_loss_db(1000.0, 1800.0, 35.0, 1.5, True), 2)
    99.68
    >>> round(rma_path_loss_db(1000.0, 1800.0, 35.0, 1.5, False), 2)
    124.65
    """
    d2d = max(distance_m, MIN_DISTANCE_M)
    fc_ghz = freq_mhz / 1000.0
    h = building_height_m
    d3d = math.sqrt(d2d * d2d + (h_bs_m - h_ut_m) ** 2)
    d_bp = 2.0 * math.pi * h_bs_m * h_ut_m * freq_mhz * 1e6 / SPEED_OF_LIGHT_M_S

    def pl1(d: float) -> float:
        return (
            20.0 * math.log10(40.0 * math.pi * d * fc_ghz / 3.0)
            + min(0.03 * math.pow(h, 1.72), 10.0) * math.log10(d)
            - min(0.044 * math.pow(h, 1.72), 14.77)
            + 0.002 * math.log10(h) * d
        )

    pl_los = pl1(d3d) if d2d <= d_bp else pl1(d_bp) + 40.0 * math.log10(d3d / d_bp)
    if los:
        return pl_los
    pl_nlos = (
        161.04
        - 7.1 * math.log10(street_width_m)
        + 7.5 * math.log10(h)
        - (24.37 - 3.7 * (h / h_bs_m) ** 2) * math.log10(h_bs_m)
        + (43.42 - 3.1 * math.log10(h_bs_m)) * (math.log10(d3d) - 3.0)
        + 20.0 * math.log10(fc_ghz)
        - (3.2 * math.log10(11.75 * h_ut_m) ** 2 - 4.97)
    )
    return max(pl_los, pl_nlos)


@register_jitable
def cost231_hata_db(
    distance_m: float,
    freq_mhz: float,
    h_bs_m: float,
    h_ms_m: float,
    c_db: float = 0.0,
) -> float:
    """COST-231 Hata path loss (COST Action 231 final report, ch. 4.4).

    L = 46.3 + 33.9 log f - 13.82 log h_b - a(h_m) + (44.9 - 6.55 log h_b) log d + C,
    with a(h_m) = (1.1 log f - 0.7) h_m - (1.56 log f - 0.8) (medium/small city).
    Valid for 1500-2000 MHz, h_b 30-200 m, h_m 1-10 m, d 1-20 km; outside that
    range it is extrapolated (distances below 10 m are evaluated at 10 m).

    Parameters
    ----------
    distance_m : float
        Horizontal distance in metres.
    freq_mhz : float
        Carrier frequency in MHz.
    h_bs_m, h_ms_m : float
        Base-station and mobile antenna heights above ground in metres.
    c_db : float
        Area correction C: 0 dB medium city and suburban, 3 dB metropolitan.

    Returns
    -------
    float
        Path loss in dB.

    Examples
    --------
    >>> round(cost231_hata_db(5000.0, 1800.0, 30.0, 1.5), 2)
    160.82
    """
    d_km = max(distance_m, MIN_DISTANCE_M) / 1000.0
    log_f = math.log10(freq_mhz)
    log_hb = math.log10(h_bs_m)
    a_hm = (1.1 * log_f - 0.7) * h_ms_m - (1.56 * log_f - 0.8)
    return (
        46.3
        + 33.9 * log_f
        - 13.82 * log_hb
        - a_hm
        + (44.9 - 6.55 * log_hb) * math.log10(d_km)
        + c_db
    )
