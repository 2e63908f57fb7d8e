"""ITU-R P.1812-8: path-specific prediction for point-to-area terrestrial services.

Basic transmission loss not exceeded for p % of the time and pL % of locations on one
terrain profile, 30 MHz – 6 GHz, written from the Recommendation's Annex 1 and its
attachments (section numbers below are those of P.1812-8):

- §3.5–3.7 radio-meteorology: path-centre latitude, β0 (the time percentage for which
  refractivity gradients exceed 100 N-units/km in the first 100 m), effective Earth
  radii ae (median) and aβ (exceeded for β0 % of the time);
- §3.8 / Attachment 1 path-profile analysis: horizon angles and distances, the
  smooth-Earth surface and effective heights, terrain roughness;
- §4.2 free space and line-of-sight with multipath/focusing corrections (Lb0p, Lb0β);
- §4.3 the delta-Bullington diffraction model: Bullington on the real profile (terrain
  plus representative clutter) minus Bullington on the smooth profile plus the
  spherical-Earth loss, at ae and at aβ, interpolated to p %;
- §4.4 troposcatter, §4.5 ducting/layer reflection, §4.6 their blend (Lbc);
- §4.7 location variability (σL) and §4.9 the loss for pL % of locations;
  §4.10 the field strength for 1 kW e.r.p.

Units follow the Recommendation: distances in km, heights in m above mean sea level
(antenna heights above ground are `htg_m`, `hrg_m`), frequency in GHz, angles in mrad,
losses in dB. Equation numbers are those of the ITU-R validation logs.

The scalar pieces are plain Python on floats, registered for numba, so that the coverage
sweep (`registry.radio._p1812_kernels`) runs the same formulas. The model's constants are
module-level names with their equation; ΔN and N0 default to values for northern Vietnam
(see `DELTA_N_DEFAULT`, `N0_DEFAULT`) because the ITU's digital maps are not
redistributable: pass the map values where they are available.

Indoor reception (§4.8, building entry loss) is outside this module: the loss is for
outdoor receivers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numba.extending import register_jitable
from numpy.typing import ArrayLike

from registry.errors import ValidationError
from registry.radio.diffraction import knife_edge_loss_db
from registry.radio.pathloss import log10

Polarisation = Literal["horizontal", "vertical"]

# -- radio-meteorology (§3.5–3.7) -----------------------------------------------------------
# Northern Vietnam defaults. N0: sea-level surface refractivity, ITU-R P.453 eq. (1)
# N = 77.6/T (P + 4810 e/T) over the Red River delta climate (January 16.5 °C, July 29.5 °C,
# relative humidity ~80 %, 1013 hPa) gives N ≈ 340 in winter and ≈ 392 in summer: 366
# as the annual mean. ΔN: average refractivity lapse through the lowest 1 km; P.453's
# exponential reference atmosphere N0 exp(-h / 7.35 km) with N0 = 366 gives 46.6. The
# validation paths (Europe) use 45; the humid subtropical value is rounded to 46.
DELTA_N_DEFAULT = 46.0  # N-units/km
N0_DEFAULT = 366.0  # N-units
LAT_DEFAULT_DEG = 22.4  # path-centre latitude: Lai Châu province
EARTH_RADIUS_KM = 6371.0  # §3.7 eq. (7)
K_BETA = 3.0  # §3.7 eq. (7b): effective Earth-radius factor exceeded for β0 % of the time
COAST_FAR_KM = 500.0  # §3.4: terminal-to-coast distance beyond any coupling effect (> 5 km)
SPEED_OF_LIGHT_GM_S = 0.2998  # λ = 0.2998 / f (m, f in GHz), as in P.1812 §4.3

# Radio-climatic zones (§3.3; the codes of the ITU SG3 profile format).
ZONE_SEA = 1
ZONE_COAST = 3
ZONE_INLAND = 4

# -- ground electrical properties for the first-term diffraction (§4.3.3) -------------------
LAND_PERMITTIVITY = 22.0
LAND_CONDUCTIVITY_S_M = 0.003
SEA_PERMITTIVITY = 80.0
SEA_CONDUCTIVITY_S_M = 5.0

# -- blending constants (§4.6, eqs. 57–60) ---------------------------------------------------
THETA_BLEND_MRAD = 0.3  # Θ, eq. (57)
XI_BLEND = 0.8  # ξ, eq. (57)
DSW_BLEND_KM = 20.0  # dsw, eq. (58)
KAPPA_BLEND = 0.5  # κ, eq. (58)
ETA_BLEND = 2.5  # η, eq. (60)
# Exact limits of the blend in double precision: tanh(x) rounds to 1 from x ~ 19.1 on
# (1 - tanh x ~ 2 e^(-2x) < 2^-54), so Fj (eq. 57) is 0 where 3 ξ (θ - Θ) / Θ >= 22; and a
# term of eq. (63) weaker by 80 dB adds 1e-16 to 1, which rounds away
FJ_ZERO_THETA_MRAD = THETA_BLEND_MRAD * (1.0 + 22.0 / (3.0 * XI_BLEND))
NEGLIGIBLE_GAP_DB = 80.0

# -- location variability (§4.7) -------------------------------------------------------------
AREA_WIDTH_DEFAULT_M = 100.0  # wa: width of the square area the variability describes
CLUTTER_FADE_M = 10.0  # σL falls linearly to 0 as the receiver rises 10 m above its clutter

FREQ_MIN_GHZ = 0.03
FREQ_MAX_GHZ = 6.0


@dataclass(frozen=True)
class P1812Result:
    """Intermediate and final values of one P.1812 prediction.

    Losses in dB (basic transmission losses `lb*`, diffraction losses `ld*`), heights in
    m above mean sea level except the effective heights, distances in km, angles in mrad.
    Names follow the Recommendation: `lb0b_db` is Lb0β, `ldb_db` is Ldβ, `beta0_pct` β0.
    """

    d_km: float  # path length
    dlt_km: float  # Tx horizon distance (Attachment 1, eq. 78)
    dlr_km: float  # Rx horizon distance (eq. 81a)
    theta_t_mrad: float  # Tx horizon elevation angle (eqs. 76–78)
    theta_r_mrad: float  # Rx horizon elevation angle (eqs. 79–81)
    theta_mrad: float  # path angular distance (eq. 82)
    hts_m: float  # Tx antenna height above mean sea level
    hrs_m: float  # Rx antenna height above mean sea level
    hst_ls_m: float  # least-squares smooth-Earth surface height at the Tx (eq. 85)
    hsr_ls_m: float  # least-squares smooth-Earth surface height at the Rx (eq. 86)
    hst_m: float  # smooth-Earth surface height at the Tx, for ducting (eq. 90a)
    hsr_m: float  # smooth-Earth surface height at the Rx, for ducting (eq. 90b)
    hstd_m: float  # smooth-Earth surface height at the Tx, for diffraction (eq. 89)
    hsrd_m: float  # smooth-Earth surface height at the Rx, for diffraction (eq. 89)
    htc_m: float  # Tx effective height for the spherical-Earth diffraction (eq. 37a)
    hrc_m: float  # Rx effective height for the spherical-Earth diffraction (eq. 37b)
    hte_m: float  # Tx effective height for ducting (eq. 92a)
    hre_m: float  # Rx effective height for ducting (eq. 92b)
    hm_m: float  # terrain roughness (eq. 93)
    omega: float  # fraction of the path over sea
    dtm_km: float  # longest continuous land (inland + coastal) section
    dlm_km: float  # longest continuous inland section
    phi_deg: float  # path-centre latitude (eq. 4)
    beta0_pct: float  # β0 (eq. 5)
    ae_km: float  # median effective Earth radius (eq. 7a)
    fi: float  # interpolation factor between Ld50 and Ldβ (eq. 40)
    fj: float  # blend factor on the path angular distance (eq. 57)
    fk: float  # blend factor on the path length (eq. 58)
    lbfs_db: float  # free space (eq. 8)
    lb0p_db: float  # line of sight for p % (eq. 10)
    lb0b_db: float  # line of sight for β0 % (eq. 11)
    lbulla_db: float  # Bullington on the real profile, at ae (eq. 21)
    lbulls_db: float  # Bullington on the smooth profile, at ae (eq. 21)
    ldsph_db: float  # spherical-Earth diffraction, at ae (eq. 27)
    ld50_db: float  # delta-Bullington diffraction at ae (eq. 39)
    lbulla_b_db: float  # the same three at aβ
    lbulls_b_db: float
    ldsph_b_db: float
    ldb_db: float  # delta-Bullington diffraction at aβ (eq. 39)
    ldp_db: float  # diffraction loss for p % (eq. 41)
    lbd50_db: float  # median diffraction basic loss (eq. 42)
    lbd_db: float  # diffraction basic loss for p % (eq. 43)
    lbs_db: float  # troposcatter (eq. 44)
    lba_db: float  # ducting / layer reflection (eq. 46)
    lminb0p_db: float  # eq. (59)
    lminbap_db: float  # eq. (60)
    lbda_db: float  # eq. (61)
    lbam_db: float  # eq. (62)
    lbc_db: float  # p % time, 50 % locations (eq. 63)
    sigma_l_db: float  # location variability standard deviation applied (§4.7)
    lb_db: float  # p % time, pL % locations (eq. 69)
    ep_dbuv_m: float  # field strength for 1 kW e.r.p. (eq. 70)


# --------------------------------------------------------------------------- scalar formulas


@register_jitable
def inverse_normal_q(x: float) -> float:
    """I(x): inverse complementary cumulative normal distribution, by the Recommendation's
    rational approximation (absolute error below 4.5e-4), as written, so that predictions
    reproduce the validation set.

    Parameters
    ----------
    x : float
        Probability in (0, 1).

    Returns
    -------
    float
        I(x), with I(x) = -I(1 - x).

    Examples
    --------
    >>> round(inverse_normal_q(0.1), 4), round(inverse_normal_q(0.9), 4)
    (1.2817, -1.2817)
    """
    q = x if x <= 0.5 else 1.0 - x
    t = math.sqrt(-2.0 * math.log(q))
    xi = ((0.010328 * t + 0.802853) * t + 2.515516698) / (
        ((0.001308 * t + 0.189269) * t + 1.432788) * t + 1.0
    )
    return t - xi if x <= 0.5 else xi - t


@register_jitable
def beta0_pct(phi_deg: float, dtm_km: float, dlm_km: float) -> float:
    """β0 (%), eq. (5): time percentage of anomalous refractivity gradients.

    Parameters
    ----------
    phi_deg : float
        Path-centre latitude, degrees.
    dtm_km, dlm_km : float
        Longest continuous land section and longest continuous inland section, km.

    Examples
    --------
    >>> round(beta0_pct(22.4, 10.0, 10.0), 3)
    18.815
    """
    tau = 1.0 - math.exp(-4.12e-4 * dlm_km**2.41)
    mu1 = math.pow(
        math.pow(10.0, -dtm_km / (16.0 - 6.6 * tau)) + math.pow(10.0, -5.0 * (0.496 + 0.354 * tau)),
        0.2,
    )
    mu1 = min(mu1, 1.0)
    lat = abs(phi_deg)
    if lat <= 70.0:
        mu4 = math.pow(10.0, (-0.935 + 0.0176 * lat) * log10(mu1))
        return math.pow(10.0, -0.015 * lat + 1.67) * mu1 * mu4
    return 4.17 * mu1 * math.pow(10.0, 0.3 * log10(mu1))


@register_jitable
def interpolation_factor(p_pct: float, beta0: float) -> float:
    """Fi, eq. (40): weight of Ldβ against Ld50 for p % (1 for p < β0)."""
    if p_pct < beta0:
        return 1.0
    return inverse_normal_q(p_pct / 100.0) / inverse_normal_q(beta0 / 100.0)


@register_jitable
def slant_distance_km(d_km: float, hts_m: float, hrs_m: float) -> float:
    """dfs, eq. (8): the distance between the antennas."""
    return math.sqrt(d_km * d_km + ((hts_m - hrs_m) / 1000.0) ** 2)


@register_jitable
def free_space_db(f_ghz: float, d_km: float, hts_m: float, hrs_m: float) -> float:
    """Lbfs, eq. (8): free space over the slant distance between the antennas."""
    return 92.4 + 20.0 * log10(f_ghz * slant_distance_km(d_km, hts_m, hrs_m))


@register_jitable
def multipath_correction_db(pct: float, dlt_plus_dlr_km: float) -> float:
    """Esp (or Esβ with β0), eq. (9): multipath and focusing correction to free space."""
    if pct == 50.0:  # log10(pct / 50) = 0
        return 0.0
    return 2.6 * (1.0 - math.exp(-0.1 * dlt_plus_dlr_km)) * log10(pct / 50.0)


@register_jitable
def bullington_tail_db(luc_db: float, d_km: float) -> float:
    """Lbull from the knife-edge loss Luc of the Bullington point, eq. (21)."""
    return luc_db + (1.0 - math.exp(-luc_db / 6.0)) * (10.0 + 0.02 * d_km)


@register_jitable
def bullington_point_nu(
    stim: float, srim: float, hts_m: float, hrs_m: float, d_km: float, lam_m: float
) -> float:
    """ν of the Bullington point of a trans-horizon path, eqs. (18)–(20).

    `stim` and `srim` are the largest slopes (m/km) from the Tx and from the Rx to the
    profile, both including the Earth bulge 500 Ce di (d - di). With a = srim d + hrs - hts
    = dbp (Stim + Srim) (eq. 19) and b = stim d + hts - hrs = (d - dbp)(Stim + Srim), the
    point's height in eq. (20) is a b / ((Stim + Srim) d) and νb = sqrt(0.002 a b / (λ d)):
    one division and no cancellation (a, b >= 0 on a trans-horizon path; 0 if rounding
    makes their product negative).

    Examples
    --------
    >>> round(bullington_point_nu(10.0, 8.0, 120.0, 40.0, 20.0, 0.1666), 4)
    3.6668
    """
    a = srim * d_km + hrs_m - hts_m
    b = stim * d_km + hts_m - hrs_m
    return math.sqrt(max(0.002 * a * b / (lam_m * d_km), 0.0))


@register_jitable
def _first_term_one(
    d_km: float,
    hte_m: float,
    hre_m: float,
    ap_km: float,
    f_ghz: float,
    eps_r: float,
    sigma_s_m: float,
    vertical: bool,
) -> float:
    """First-term spherical-Earth diffraction for one ground type, eqs. (29)–(36)."""
    s = 18.0 * sigma_s_m / f_ghz
    k = 0.036 * math.pow(ap_km * f_ghz, -1.0 / 3.0) * math.pow((eps_r - 1.0) ** 2 + s * s, -0.25)
    if vertical:
        k *= math.sqrt(eps_r * eps_r + s * s)
    k2 = k * k
    b = (1.0 + 1.6 * k2 + 0.67 * k2 * k2) / (1.0 + 4.5 * k2 + 1.53 * k2 * k2)
    x = 21.88 * b * math.pow(f_ghz / (ap_km * ap_km), 1.0 / 3.0) * d_km
    y_scale = 0.9575 * b * math.pow(f_ghz * f_ghz / ap_km, 1.0 / 3.0)
    if x >= 1.6:
        fx = 11.0 + 10.0 * log10(x) - 17.6 * x
    else:
        fx = -20.0 * log10(x) - 5.6488 * math.pow(x, 1.425)
    g_min = 2.0 + 20.0 * log10(k)
    total = -fx
    for h in (hte_m, hre_m):
        bb = b * y_scale * h
        if bb > 2.0:
            g = 17.6 * math.sqrt(bb - 1.1) - 5.0 * log10(bb - 1.1) - 8.0
        else:
            g = 20.0 * log10(bb + 0.1 * bb**3)
        total -= max(g, g_min)
    return total


@register_jitable
def first_term_db(
    d_km: float,
    hte_m: float,
    hre_m: float,
    ap_km: float,
    f_ghz: float,
    omega: float,
    vertical: bool,
) -> float:
    """Ldft, eq. (29): first-term diffraction, land and sea weighted by the sea fraction ω."""
    land = _first_term_one(
        d_km, hte_m, hre_m, ap_km, f_ghz, LAND_PERMITTIVITY, LAND_CONDUCTIVITY_S_M, vertical
    )
    if omega <= 0.0:
        return land
    sea = _first_term_one(
        d_km, hte_m, hre_m, ap_km, f_ghz, SEA_PERMITTIVITY, SEA_CONDUCTIVITY_S_M, vertical
    )
    return omega * sea + (1.0 - omega) * land


@register_jitable
def earth_clearance_m(d_km: float, hte_m: float, hre_m: float, ap_km: float) -> float:
    """The least clearance of the straight ray between heights hte and hre (m) above a
    smooth Earth of radius ap over d: the minimum of a convex quadratic of the distance,
    non-decreasing in both heights."""
    x = min(max(0.5 * d_km + (hte_m - hre_m) * ap_km / (1000.0 * d_km), 0.0), d_km)
    return hte_m + (hre_m - hte_m) * x / d_km - 500.0 * x * (d_km - x) / ap_km


@register_jitable
def largest_hreq_m(d_km: float, lam_m: float) -> float:
    """hreq (eq. 27) at its largest, dse1 = dse2 = d / 2, and a micrometre for rounding."""
    return 8.728 * math.sqrt(d_km * lam_m) + 1e-6


@register_jitable
def spherical_earth_db(
    d_km: float,
    hte_m: float,
    hre_m: float,
    ap_km: float,
    f_ghz: float,
    lam_m: float,
    omega: float,
    vertical: bool,
) -> float:
    """Ldsph, eqs. (22)–(28): spherical-Earth diffraction loss for effective radius ap.

    Examples
    --------
    >>> round(spherical_earth_db(50.0, 30.0, 10.0, 8500.0, 1.0, 0.2998, 0.0, True), 2)
    32.88
    """
    # hse (eq. 26) is the ray's clearance above the Earth at dse1: a ray clearing the Earth
    # everywhere by more than any hreq is within the horizon (d < dlos) and needs no
    # cubic: the same 0 as below
    if earth_clearance_m(d_km, hte_m, hre_m, ap_km) > largest_hreq_m(d_km, lam_m):
        return 0.0
    dlos = math.sqrt(2.0 * ap_km) * (math.sqrt(0.001 * hte_m) + math.sqrt(0.001 * hre_m))
    if d_km >= dlos:
        return first_term_db(d_km, hte_m, hre_m, ap_km, f_ghz, omega, vertical)
    c = (hte_m - hre_m) / (hte_m + hre_m)
    m = 250.0 * d_km * d_km / (ap_km * (hte_m + hre_m))
    b = (
        2.0
        * math.sqrt((m + 1.0) / (3.0 * m))
        * math.cos(math.pi / 3.0 + math.acos(1.5 * c * math.sqrt(3.0 * m / (m + 1.0) ** 3)) / 3.0)
    )
    dse1 = 0.5 * d_km * (1.0 + b)
    dse2 = d_km - dse1
    hse = (
        (hte_m - 500.0 * dse1 * dse1 / ap_km) * dse2 + (hre_m - 500.0 * dse2 * dse2 / ap_km) * dse1
    ) / d_km
    hreq = 17.456 * math.sqrt(dse1 * dse2 * lam_m / d_km)
    if hse > hreq:
        return 0.0
    aem = 500.0 * (d_km / (math.sqrt(hte_m) + math.sqrt(hre_m))) ** 2
    ldft = first_term_db(d_km, hte_m, hre_m, aem, f_ghz, omega, vertical)
    if ldft < 0.0:
        return 0.0
    return (1.0 - hse / hreq) * ldft


@register_jitable
def troposcatter_base_db(f_ghz: float, n0: float, p_pct: float) -> float:
    """The path-independent terms of Lbs, eq. (44): frequency, N0 and time percentage."""
    lf = 25.0 * log10(f_ghz) - 2.5 * log10(0.5 * f_ghz) ** 2
    return 190.1 + lf - 0.15 * n0 - 10.125 * math.pow(log10(50.0 / p_pct), 0.7)


@register_jitable
def troposcatter_db(base_db: float, d_km: float, theta_mrad: float) -> float:
    """Lbs, eq. (44): troposcatter loss not exceeded for p % of the time, from
    `troposcatter_base_db`."""
    return base_db + 20.0 * log10(d_km) + 0.573 * theta_mrad


@register_jitable
def blend_fk(d_km: float) -> float:
    """Fk, eq. (58): weight of the path length in the ducting / diffraction blend."""
    return 1.0 - 0.5 * (1.0 + math.tanh(3.0 * KAPPA_BLEND * (d_km - DSW_BLEND_KM) / DSW_BLEND_KM))


@register_jitable
def blend_db(
    lbfs: float,
    lb0p: float,
    lb0b: float,
    ld50: float,
    ldp: float,
    lba: float,
    lbs: float,
    theta_mrad: float,
    d_km: float,
    omega: float,
    p_pct: float,
    beta0: float,
    fi: float,
) -> tuple[float, float, float, float, float, float]:
    """Eqs. (57)–(63): (Fj, Lminb0p, Lminbap, Lbda, Lbam, Lbc); Fk (`blend_fk`) only where
    it weighs in, Lminbap <= Lbd."""
    fj = 1.0 - 0.5 * (
        1.0 + math.tanh(3.0 * XI_BLEND * (theta_mrad - THETA_BLEND_MRAD) / THETA_BLEND_MRAD)
    )
    if p_pct < beta0:
        lminb0p = lb0p + (1.0 - omega) * ldp
    else:
        lbd50 = lbfs + ld50
        lminb0p = lbd50 + (lb0b + (1.0 - omega) * ldp - lbd50) * fi
    lbd = lb0p + ldp
    if math.isinf(lba):
        lminbap = lba
    else:
        top = max(lba, lb0p)  # η ln(e^(a/η) + e^(b/η)) without overflow
        lminbap = top + ETA_BLEND * math.log(
            math.exp((lba - top) / ETA_BLEND) + math.exp((lb0p - top) / ETA_BLEND)
        )
    lbda = lbd if lminbap > lbd else lminbap + (lbd - lminbap) * blend_fk(d_km)
    lbam = lbda + (lminb0p - lbda) * fj
    # -5 log10(10^(-0.2 Lbs) + 10^(-0.2 Lbam)), from the smaller term (one power, no
    # overflow)
    low = float(min(lbs, lbam))
    gap = max(lbs, lbam) - low
    lbc = low - 5.0 * log10(1.0 + 10.0 ** (-0.2 * gap)) if gap < NEGLIGIBLE_GAP_DB else low
    return fj, lminb0p, lminbap, lbda, lbam, lbc


@register_jitable
def location_sigma_db(f_ghz: float, hrg_m: float, clutter_m: float, area_width_m: float) -> float:
    """σL, §4.7: location variability of a wa-wide square, fading out above the clutter.

    σL = (0.024 f + 0.52) wa^0.28, times 1 for a receiver below its representative clutter
    height R, falling linearly to 0 at R + 10 m.

    Examples
    --------
    >>> round(location_sigma_db(1.8, 1.5, 0.0, 100.0), 3)
    1.738
    """
    sigma = (0.024 * f_ghz + 0.52) * math.pow(area_width_m, 0.28)
    if hrg_m < clutter_m:
        return sigma
    if hrg_m >= clutter_m + CLUTTER_FADE_M:
        return 0.0
    return sigma * (1.0 - (hrg_m - clutter_m) / CLUTTER_FADE_M)


@register_jitable
def location_margin_db(pl_pct: float, sigma_l_db: float) -> float:
    """I(pL / 100) σL: the shift of eq. (69) from the median to pL % of locations."""
    return inverse_normal_q(pl_pct / 100.0) * sigma_l_db


@register_jitable
def location_loss_db(lb0p: float, lbc: float, margin_db: float) -> float:
    """Lb, eq. (69): the loss not exceeded at pL % of locations (outdoors), never below Lb0p;
    `margin_db` from `location_margin_db`."""
    return max(lb0p, lbc - margin_db)


@register_jitable
def field_strength_dbuv_m(f_ghz: float, lb_db: float) -> float:
    """Ep, eq. (70): field strength (dBµV/m) for 1 kW e.r.p."""
    return 199.36 + 20.0 * log10(f_ghz) - lb_db


# --------------------------------------------------------------------------- profile analysis


def path_centre_latitude(
    lat_t_deg: float, lon_t_deg: float, lat_r_deg: float, lon_r_deg: float, d_km: float
) -> float:
    """Latitude of the path centre (eq. 4), degrees: the point d/2 from the transmitter
    along the great circle towards the receiver, on a sphere of 6371 km.

    Examples
    --------
    >>> round(path_centre_latitude(53.1833333, -6.3333333, 54.1666667, -3.1833333, 235.1), 4)
    53.6866
    """
    p1, l1, p2, l2 = (math.radians(v) for v in (lat_t_deg, lon_t_deg, lat_r_deg, lon_r_deg))
    bearing = math.atan2(
        math.sin(l2 - l1) * math.cos(p2),
        math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(l2 - l1),
    )
    delta = 0.5 * d_km / EARTH_RADIUS_KM
    return math.degrees(
        math.asin(
            math.sin(p1) * math.cos(delta) + math.cos(p1) * math.sin(delta) * math.cos(bearing)
        )
    )


def _zone_sections(d: np.ndarray, zone: np.ndarray) -> tuple[float, float, float]:
    """(ω, dtm, dlm): sea fraction, longest land and longest inland section (§3.3).

    Each profile point stands for the path from half-way to its predecessor to half-way to
    its successor.
    """
    mid = 0.5 * (d[1:] + d[:-1])
    edges = np.concatenate(([d[0]], mid, [d[-1]]))
    length = np.diff(edges)
    total = d[-1] - d[0]

    def longest(mask: np.ndarray) -> float:
        best = run = 0.0
        for inside, w in zip(mask, length, strict=True):
            run = run + w if inside else 0.0
            best = max(best, run)
        return best

    omega = float(length[zone == ZONE_SEA].sum() / total)
    return omega, longest(zone != ZONE_SEA), longest(zone == ZONE_INLAND)


def _bullington_profile_db(
    d: np.ndarray, g: np.ndarray, hts: float, hrs: float, ap_km: float, lam_m: float
) -> float:
    """Lbull, §4.3.1, on a profile of heights g (terminal points included, unused)."""
    dd = d[-1]
    di = d[1:-1]
    bulge = 500.0 / ap_km * di * (dd - di)
    stim = np.max((g[1:-1] + bulge - hts) / di)
    if stim < (hrs - hts) / dd:  # line of sight, eqs. (16)–(17)
        nu = np.max(
            (g[1:-1] + bulge - (hts * (dd - di) + hrs * di) / dd)
            * np.sqrt(0.002 * dd / (lam_m * di * (dd - di)))
        )
    else:
        srim = np.max((g[1:-1] + bulge - hrs) / (dd - di))
        nu = bullington_point_nu(float(stim), float(srim), hts, hrs, dd, lam_m)
    return bullington_tail_db(knife_edge_loss_db(float(nu)), dd)


def _delta_bullington_db(
    d: np.ndarray,
    g: np.ndarray,
    hts: float,
    hrs: float,
    htc: float,
    hrc: float,
    ap_km: float,
    f_ghz: float,
    lam_m: float,
    omega: float,
    vertical: bool,
) -> tuple[float, float, float, float]:
    """(Lbulla, Lbulls, Ldsph, Ld), §4.3.4 eqs. (37)–(39), for effective radius ap."""
    lbulla = _bullington_profile_db(d, g, hts, hrs, ap_km, lam_m)
    lbulls = _bullington_profile_db(d, np.zeros_like(g), htc, hrc, ap_km, lam_m)
    ldsph = spherical_earth_db(d[-1], htc, hrc, ap_km, f_ghz, lam_m, omega, vertical)
    return lbulla, lbulls, ldsph, lbulla + max(ldsph - lbulls, 0.0)


def _mrad(slope: float) -> float:
    """Elevation angle (mrad) of a rise of `slope` m/km: 1000 arctan(slope / 1000)."""
    return 1000.0 * math.atan(slope / 1000.0)


@dataclass(frozen=True)
class _Geometry:
    """Attachment 1's path-profile analysis."""

    dlt: float
    dlr: float
    theta_t: float
    theta_r: float
    theta: float
    hst_ls: float
    hsr_ls: float
    hst: float
    hsr: float
    hstd: float
    hsrd: float
    hm: float


def _geometry(
    d: np.ndarray, h: np.ndarray, hts: float, hrs: float, ae: float, lam_m: float
) -> _Geometry:
    """Horizons, smooth-Earth surfaces and roughness on the terrain (clutter excluded)."""
    dd = d[-1]
    di = d[1:-1]
    hi = h[1:-1]
    # horizon elevation angles (mrad), eqs. (76)–(81)
    elev_t = (hi - hts) / di - 1000.0 * di / (2.0 * ae)
    it = int(np.argmax(elev_t))
    theta_td = (hrs - hts) / dd - 1000.0 * dd / (2.0 * ae)
    if elev_t[it] > theta_td:  # trans-horizon
        elev_r = (hi - hrs) / (dd - di) - 1000.0 * (dd - di) / (2.0 * ae)
        ir = int(np.argmax(elev_r))
        theta_t = _mrad(float(elev_t[it]))
        theta_r = _mrad(float(elev_r[ir]))
        i_lt, i_lr = it + 1, ir + 1
    else:  # line of sight: both horizons at the point of largest ν
        theta_t = _mrad(theta_td)
        theta_r = _mrad((hts - hrs) / dd - 1000.0 * dd / (2.0 * ae))
        nu = (hi + 500.0 / ae * di * (dd - di) - (hts * (dd - di) + hrs * di) / dd) * np.sqrt(
            0.002 * dd / (lam_m * di * (dd - di))
        )
        i_lt = i_lr = int(np.argmax(nu)) + 1
    dlt = float(d[i_lt])
    dlr = float(dd - d[i_lr])
    theta = 1000.0 * dd / ae + theta_t + theta_r
    # least-squares smooth-Earth surface, eqs. (83)–(86)
    step = np.diff(d)
    v1 = float(np.sum(step * (h[1:] + h[:-1])))
    v2 = float(np.sum(step * (h[1:] * (2.0 * d[1:] + d[:-1]) + h[:-1] * (d[1:] + 2.0 * d[:-1]))))
    hst0 = (2.0 * v1 * dd - v2) / dd**2
    hsr0 = (v2 - v1 * dd) / dd**2
    # smooth surface for diffraction, eqs. (87)–(89)
    big_h = hi - (hts * (dd - di) + hrs * di) / dd
    hobs = float(np.max(big_h))
    if hobs <= 0.0:
        hstp, hsrp = hst0, hsr0
    else:
        aobt = float(np.max(big_h / di))
        aobr = float(np.max(big_h / (dd - di)))
        hstp = hst0 - hobs * aobt / (aobt + aobr)
        hsrp = hsr0 - hobs * aobr / (aobt + aobr)
    hstd = min(hstp, float(h[0]))
    hsrd = min(hsrp, float(h[-1]))
    # smooth surface for ducting and the roughness, eqs. (90)–(93)
    hst = min(hst0, float(h[0]))
    hsr = min(hsr0, float(h[-1]))
    m = (hsr - hst) / dd
    sl = slice(i_lt, i_lr + 1)
    hm = float(np.max(h[sl] - (hst + m * d[sl])))
    return _Geometry(dlt, dlr, theta_t, theta_r, theta, hst0, hsr0, hst, hsr, hstd, hsrd, hm)


@register_jitable
def _site_shielding(f_ghz: float, theta_mrad: float, dl_km: float) -> tuple[float, float]:
    """Ast or Asr, eq. (48), as (the argument of its logarithm, θ'' >= 0): the site-shielding
    loss of a terminal's horizon is 20 log10(first) + 0.264 second f^(1/3)."""
    t2 = theta_mrad - 0.1 * dl_km
    if t2 <= 0.0:
        return 1.0, 0.0
    return 1.0 + 0.361 * t2 * math.sqrt(f_ghz * dl_km), t2


@register_jitable
def _sea_coupling_db(omega: float, dc_km: float, dl_km: float, hs_m: float) -> float:
    """Act or Acr, eq. (49): over-sea surface-duct coupling of a terminal near the coast."""
    if omega >= 0.75 and dc_km <= dl_km and dc_km <= 5.0:
        return -3.0 * math.exp(-0.25 * dc_km * dc_km) * (1.0 + math.tanh(0.07 * (50.0 - hs_m)))
    return 0.0


@register_jitable
def ducting_fixed_terms(
    f_ghz: float,
    f_cbrt: float,
    d_km: float,
    dlt_km: float,
    dlr_km: float,
    theta_t_mrad: float,
    theta_r_mrad: float,
    hts_m: float,
    hrs_m: float,
    ae_km: float,
    omega: float,
    dct_km: float,
    dcr_km: float,
) -> tuple[float, float]:
    """Af + Ad(θ'), §4.5 eqs. (47)–(52a), the time-independent part of Lba, as (A, P) with
    Af + Ad = A + 20 log10(P): P = f (dlt + dlr) times the site-shielding arguments of
    eq. (48) (one logarithm for three); both grow with θt and θr. `f_cbrt` = f^(1/3)."""
    alf = 45.375 - 137.0 * f_ghz + 92.5 * f_ghz**2 if f_ghz < 0.5 else 0.0  # eq. (47a)
    shield_t, t2_t = _site_shielding(f_ghz, theta_t_mrad, dlt_km)
    shield_r, t2_r = _site_shielding(f_ghz, theta_r_mrad, dlr_km)
    gamma_d = 5e-5 * ae_km * f_cbrt  # eq. (51)
    theta_p = (
        1000.0 * d_km / ae_km + min(theta_t_mrad, 0.1 * dlt_km) + min(theta_r_mrad, 0.1 * dlr_km)
    )  # eqs. (52), (52a)
    a_db = (
        102.45
        + alf
        + 0.264 * (t2_t + t2_r) * f_cbrt
        + _sea_coupling_db(omega, dct_km, dlt_km, hts_m)
        + _sea_coupling_db(omega, dcr_km, dlr_km, hrs_m)
        + gamma_d * theta_p
    )  # eqs. (47), (48), (50)
    return a_db, f_ghz * (dlt_km + dlr_km) * shield_t * shield_r


@register_jitable
def ducting_time_db(
    p_pct: float,
    d_km: float,
    dlt_km: float,
    dlr_km: float,
    hte_m: float,
    hre_m: float,
    hm_m: float,
    ae_km: float,
    beta0: float,
    dlm_km: float,
) -> float:
    """Ap(p), §4.5 eqs. (53)–(56a): the time-percentage part of Lba."""
    tau = 1.0 - math.exp(-4.12e-4 * dlm_km**2.41)
    alpha = max(-0.6 - 3.5e-9 * math.pow(d_km, 3.1) * tau, -3.4)  # eq. (55a)
    mu2 = min(
        math.pow(500.0 / ae_km * d_km**2 / (math.sqrt(hte_m) + math.sqrt(hre_m)) ** 2, alpha), 1.0
    )
    d_i = min(d_km - dlt_km - dlr_km, 40.0)  # eq. (56a)
    mu3 = 1.0 if hm_m <= 10.0 else math.exp(-4.6e-5 * (hm_m - 10.0) * (43.0 + 6.0 * d_i))
    beta = beta0 * mu2 * mu3  # eq. (54)
    lb = log10(beta)
    gamma = (
        1.076
        / math.pow(2.0058 - lb, 1.012)
        * math.exp(-(9.51 - 4.8 * lb + 0.198 * lb * lb) * 1e-6 * math.pow(d_km, 1.13))
    )  # eq. (53a)
    return (
        -12.0 + (1.2 + 3.7e-3 * d_km) * log10(p_pct / beta) + 12.0 * math.pow(p_pct / beta, gamma)
    )  # eq. (53)


@register_jitable
def beta0_max_pct(phi_deg: float) -> float:
    """Upper bound of β0 (eq. 5) over all path lengths at latitude φ: its value for μ1 = 1
    (μ1 <= 1, and β0 grows with μ1)."""
    lat = abs(phi_deg)
    return math.pow(10.0, -0.015 * lat + 1.67) if lat <= 70.0 else 4.17


@register_jitable
def ducting_time_floor_db(p_pct: float, d_km: float, beta0_max: float) -> float:
    """Lower bound of Ap (eq. 53) for any β <= β0 <= `beta0_max` (β = β0 μ2 μ3, μ2, μ3 <= 1).

    With x = p / β and Γ > 0 (β < 10^2.0058): Ap >= 0 for x >= 1 (every term), and
    Ap > -12 + (1.2 + 3.7e-3 d) log10(p / β0max) otherwise.
    """
    x0 = p_pct / beta0_max
    if x0 >= 1.0:
        return 0.0
    return -12.0 + (1.2 + 3.7e-3 * d_km) * log10(x0)


@register_jitable
def ducting_db(
    f_ghz: float,
    p_pct: float,
    d_km: float,
    dlt_km: float,
    dlr_km: float,
    theta_t_mrad: float,
    theta_r_mrad: float,
    hts_m: float,
    hrs_m: float,
    hte_m: float,
    hre_m: float,
    hm_m: float,
    ae_km: float,
    beta0: float,
    dlm_km: float,
    omega: float,
    dct_km: float,
    dcr_km: float,
) -> float:
    """Lba, §4.5 eqs. (45)–(56): ducting / layer reflection loss for p % of the time."""
    a_db, arg = ducting_fixed_terms(
        f_ghz, np.cbrt(f_ghz), d_km, dlt_km, dlr_km, theta_t_mrad, theta_r_mrad, hts_m, hrs_m,
        ae_km, omega, dct_km, dcr_km,
    )  # fmt: skip
    return (
        a_db
        + 20.0 * log10(arg)
        + ducting_time_db(p_pct, d_km, dlt_km, dlr_km, hte_m, hre_m, hm_m, ae_km, beta0, dlm_km)
    )


# --------------------------------------------------------------------------- public entry


def _check(ok: bool, field: str, reason: str) -> None:
    if not ok:
        raise ValidationError(f"{field}: {reason}", details=[{"field": field, "reason": reason}])


def _profile(
    d_km: ArrayLike,
    h_m: ArrayLike,
    clutter_heights_m: ArrayLike | None,
    zones: ArrayLike | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = np.asarray(d_km, dtype=np.float64)
    h = np.asarray(h_m, dtype=np.float64)
    _check(d.ndim == 1 and d.size >= 3, "d_km", "a profile needs at least 3 points")
    _check(h.shape == d.shape, "h_m", f"{h.size} heights for {d.size} distances")
    _check(bool(np.all(np.isfinite(d))), "d_km", "distances must be finite")
    _check(bool(np.all(np.isfinite(h))), "h_m", "heights must be finite")
    _check(bool(np.all(np.diff(d) > 0.0)), "d_km", "distances must be strictly increasing")
    if clutter_heights_m is None:
        r = np.zeros_like(d)
    else:
        r = np.asarray(clutter_heights_m, dtype=np.float64)
        _check(r.shape == d.shape, "clutter_heights_m", f"{r.size} values for {d.size} points")
        _check(bool(np.all(np.isfinite(r) & (r >= 0.0))), "clutter_heights_m", "must be >= 0")
    if zones is None:
        z = np.full(d.shape, ZONE_INLAND, dtype=np.int64)
    else:
        z = np.asarray(zones, dtype=np.int64)
        _check(z.shape == d.shape, "zones", f"{z.size} values for {d.size} points")
        _check(
            bool(np.all(np.isin(z, (ZONE_SEA, ZONE_COAST, ZONE_INLAND)))),
            "zones",
            "codes are 1 (sea), 3 (coastal land) or 4 (inland)",
        )
    return d - d[0], h, r, z


def p1812_loss(
    d_km: ArrayLike,
    h_m: ArrayLike,
    *,
    htg_m: float,
    hrg_m: float,
    f_ghz: float,
    p_pct: float,
    pl_pct: float = 50.0,
    lat_deg: float = LAT_DEFAULT_DEG,
    delta_n: float = DELTA_N_DEFAULT,
    n0: float = N0_DEFAULT,
    clutter_heights_m: ArrayLike | None = None,
    zones: ArrayLike | None = None,
    polarisation: Polarisation = "vertical",
    sigma_l_db: float | None = None,
    area_width_m: float = AREA_WIDTH_DEFAULT_M,
    dct_km: float = COAST_FAR_KM,
    dcr_km: float = COAST_FAR_KM,
) -> P1812Result:
    """Basic transmission loss of one path by ITU-R P.1812-8, with its intermediate values.

    Parameters
    ----------
    d_km : array_like
        Distances of the profile points from the transmitter, km, strictly increasing
        (the first point is the transmitter, the last the receiver; at least 3 points).
    h_m : array_like
        Terrain heights above mean sea level, m.
    htg_m, hrg_m : float
        Antenna heights above ground of the transmitter and the receiver, m.
    f_ghz : float
        Frequency, 0.03–6 GHz.
    p_pct : float
        Time percentage, 1–50 %.
    pl_pct : float
        Location percentage, 1–99 %.
    lat_deg : float
        Path-centre latitude (eq. 4; `path_centre_latitude` from the end points), degrees.
    delta_n, n0 : float
        Average radio-refractive index lapse rate through the lowest 1 km (N-units/km) and
        sea-level surface refractivity (N-units), from the ITU-R maps (§3.5).
    clutter_heights_m : array_like, optional
        Representative clutter height of each profile point, m (§3.2.1; Table 2 gives
        10/15/20 m for suburban/urban-forest/dense urban). Default: no clutter. Added to
        the terrain at the intermediate points; the terminals stand on the terrain, and
        the receiver's value sets how much location variability applies (§4.7).
    zones : array_like, optional
        Radio-climatic zone of each point: 1 sea, 3 coastal land, 4 inland (default).
    polarisation : {"vertical", "horizontal"}
    sigma_l_db : float, optional
        Location variability standard deviation; default σL of §4.7 for a square of
        `area_width_m`.
    area_width_m : float
        wa of §4.7, the width of the square area the variability describes, m.
    dct_km, dcr_km : float
        Distances over land from the transmitter/receiver to the coast (§3.4); the
        over-sea duct coupling only acts within 5 km.

    Returns
    -------
    P1812Result

    Raises
    ------
    ValidationError
        A malformed profile or a parameter outside the Recommendation's range.

    Examples
    --------
    >>> d = [0.0, 5.0, 10.0]
    >>> r = p1812_loss(d, [100.0, 100.0, 100.0], htg_m=30.0, hrg_m=1.5, f_ghz=1.8, p_pct=50.0)
    >>> round(r.lbfs_db, 2), round(r.lb_db, 2)
    (117.51, 127.74)
    """
    d, h, r, zone = _profile(d_km, h_m, clutter_heights_m, zones)
    _check(FREQ_MIN_GHZ <= f_ghz <= FREQ_MAX_GHZ, "f_ghz", "must be within 0.03–6 GHz")
    _check(1.0 <= p_pct <= 50.0, "p_pct", "must be within 1–50 %")
    _check(1.0 <= pl_pct <= 99.0, "pl_pct", "must be within 1–99 %")
    _check(htg_m > 0.0, "htg_m", "must be > 0")
    _check(hrg_m > 0.0, "hrg_m", "must be > 0")
    _check(-90.0 <= lat_deg <= 90.0, "lat_deg", "must be a latitude")
    _check(0.0 <= delta_n < 157.0, "delta_n", "must be within 0–157 N-units/km")
    _check(n0 > 0.0, "n0", "must be > 0")
    _check(polarisation in ("vertical", "horizontal"), "polarisation", "vertical or horizontal")
    _check(sigma_l_db is None or sigma_l_db >= 0.0, "sigma_l_db", "must be >= 0")
    _check(area_width_m > 0.0, "area_width_m", "must be > 0")
    vertical = polarisation == "vertical"

    dd = float(d[-1])
    lam = SPEED_OF_LIGHT_GM_S / f_ghz
    g = h + r  # the Bullington of the real profile reads its intermediate points only
    hts = float(h[0]) + htg_m
    hrs = float(h[-1]) + hrg_m
    ae = EARTH_RADIUS_KM * 157.0 / (157.0 - delta_n)  # eqs. (6), (7a)
    ab = EARTH_RADIUS_KM * K_BETA  # eq. (7b)
    omega, dtm, dlm = _zone_sections(d, zone)
    beta0 = beta0_pct(lat_deg, dtm, dlm)
    geo = _geometry(d, h, hts, hrs, ae, lam)

    lbfs = free_space_db(f_ghz, dd, hts, hrs)
    lb0p = lbfs + multipath_correction_db(p_pct, geo.dlt + geo.dlr)
    lb0b = lbfs + multipath_correction_db(beta0, geo.dlt + geo.dlr)

    htc = hts - geo.hstd
    hrc = hrs - geo.hsrd
    lbulla, lbulls, ldsph, ld50 = _delta_bullington_db(
        d, g, hts, hrs, htc, hrc, ae, f_ghz, lam, omega, vertical
    )
    lbulla_b, lbulls_b, ldsph_b, ldb = _delta_bullington_db(
        d, g, hts, hrs, htc, hrc, ab, f_ghz, lam, omega, vertical
    )
    fi = interpolation_factor(p_pct, beta0)
    ldp = ld50 + fi * (ldb - ld50)  # eq. (41)

    lbs = troposcatter_db(troposcatter_base_db(f_ghz, n0, p_pct), dd, geo.theta)
    hte = hts - geo.hst
    hre = hrs - geo.hsr
    lba = ducting_db(
        f_ghz, p_pct, dd, geo.dlt, geo.dlr, geo.theta_t, geo.theta_r, hts, hrs, hte, hre,
        geo.hm, ae, beta0, dlm, omega, dct_km, dcr_km,
    )  # fmt: skip
    fj, lminb0p, lminbap, lbda, lbam, lbc = blend_db(
        lbfs, lb0p, lb0b, ld50, ldp, lba, lbs, geo.theta, dd, omega, p_pct, beta0, fi
    )
    if sigma_l_db is None:
        sigma_l_db = location_sigma_db(f_ghz, hrg_m, float(r[-1]), area_width_m)
    lb = location_loss_db(lb0p, lbc, location_margin_db(pl_pct, sigma_l_db))
    return P1812Result(
        d_km=dd,
        dlt_km=geo.dlt,
        dlr_km=geo.dlr,
        theta_t_mrad=geo.theta_t,
        theta_r_mrad=geo.theta_r,
        theta_mrad=geo.theta,
        hts_m=hts,
        hrs_m=hrs,
        hst_ls_m=geo.hst_ls,
        hsr_ls_m=geo.hsr_ls,
        hst_m=geo.hst,
        hsr_m=geo.hsr,
        hstd_m=geo.hstd,
        hsrd_m=geo.hsrd,
        htc_m=htc,
        hrc_m=hrc,
        hte_m=hte,
        hre_m=hre,
        hm_m=geo.hm,
        omega=omega,
        dtm_km=dtm,
        dlm_km=dlm,
        phi_deg=lat_deg,
        beta0_pct=beta0,
        ae_km=ae,
        fi=fi,
        fj=fj,
        fk=blend_fk(dd),
        lbfs_db=lbfs,
        lb0p_db=lb0p,
        lb0b_db=lb0b,
        lbulla_db=lbulla,
        lbulls_db=lbulls,
        ldsph_db=ldsph,
        ld50_db=ld50,
        lbulla_b_db=lbulla_b,
        lbulls_b_db=lbulls_b,
        ldsph_b_db=ldsph_b,
        ldb_db=ldb,
        ldp_db=ldp,
        lbd50_db=lbfs + ld50,
        lbd_db=lb0p + ldp,
        lbs_db=lbs,
        lba_db=lba,
        lminb0p_db=lminb0p,
        lminbap_db=lminbap,
        lbda_db=lbda,
        lbam_db=lbam,
        lbc_db=lbc,
        sigma_l_db=sigma_l_db,
        lb_db=lb,
        ep_dbuv_m=field_strength_dbuv_m(f_ghz, lb),
    )
