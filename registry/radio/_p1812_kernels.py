"""Compiled ITU-R P.1812 coverage sweep (private; `registry.radio.coverage` dispatches here).

`p1812_sweep` has the call signature and output convention of
`registry.radio._kernels.deygout_sweep`: the same window, cones, rays, ray sampling and
cell ownership (see that module's docstring), so the two models map the same cells from
the same terrain samples. Each analysis cell is the receiver of a P.1812-8 prediction
(`registry.radio.p1812`) whose profile is its owning ray's samples at rows 1..t-1,
between the site (its window-centre ground height, antenna at `z_tx`) and the cell centre
(its own ground height and distance, antenna `rx_h` above it). What needs the ray's
state as walked up to a cell is recorded by `_cell_geometry`; the formulas of its
record (`_cell_loss`) run after the ray's walk, out of the walk's loop.

Incremental delta-Bullington
============================
Every profile quantity P.1812 takes an extreme of is an extreme over the ray's upper
convex hull, which the ray keeps as it walks (monotone chain, O(1) amortised per sample):

- The Bullington slopes and the horizon angles: with heights lowered by d² / (2a) for an
  effective radius a, the slope from the transmitter to a point differs from Stim's term
  (eq. 14) and from the horizon elevation (eq. 76) by a constant, and the slope from the
  (equally lowered) receiver from Srim's (eq. 18) and eq. (79)'s by another; the largest
  slope from a point outside the chain is at the tangent vertex of the upper hull, found by
  bisection (the slopes to successive vertices rise, then fall). One hull per radius:
  ae (median) and, for p < 50 %, aβ (at p = 50 % the weight Fi of eq. 40 is I(0.5) / I(β0),
  about 1e-9 with the Recommendation's approximation of I: taken as 0). The tangent from
  the transmitter is a running maximum of the walk (`_push_sample`), without a search.
- On line-of-sight paths the largest ν (eq. 16) is taken over the hull vertices; for ν > 0
  that is exact (points of ν >= c > 0 lie above a concave curve), for -0.78 < ν <= 0 a
  sample under the hull may have a larger ν than every vertex: the one approximation of
  the sweep's geometry (J(ν) of at most 6 dB there; the same vertex is the line-of-sight
  horizon point ducting uses). Two numerical ones: J(ν) and the Bullington tail (eq. 21)
  come from a table (`_bullington_tail`, within 1e-6 dB up to 500 km), and the blend
  leaves out a troposcatter term 40 dB weaker (2.2e-8 dB, below).
- The smooth-surface obstruction hobs and the slopes αobt, αobr (eqs. 87–88) are taken
  over the ae hull's vertices (`_obstruction`: on the lowered heights each is, along a
  hull edge, convex or monotone in the distance, so largest at an end); the least-squares
  smooth surface (eqs. 83–86) comes from running sums.
- The smooth profile's Bullington (zero heights at the ray's sample distances) has its
  extremes in closed form: both slopes are concave in the distance, checked at the two
  samples around the continuous optimum; its line-of-sight ν is unimodal in the distance
  (checked numerically over the parameter range; found by bisection).

Ducting / layer reflection (§4.5) takes the same horizons, the smooth-Earth heights of
eq. (90) and the roughness hm of eq. (93), the largest height above that surface between
the two horizons, scanned over the ray's stored samples. The paths are inland (ω = 0,
dtm = dlm = d, coast far away) and without clutter.

Shortcuts (each leaves every loss as the full formulas give it, to rounding, but the
troposcatter one):

- Lba's time part Ap (eqs. 53–56), β0 (eq. 5) and hm are evaluated only where Lba can
  reach the blend: Lminbap (eq. 60) >= Lba >= Af + Ad + a floor of Ap over every
  β <= β0max (`ducting_time_floor_db`), and above Lbd the blend takes Lbda = Lbd (eq. 61)
  whatever Lba is. On mountainous terrain that skips 98 % of the trans-horizon cells, 80 %
  of them on a lower bound of Af + Ad without its logarithm or the arctangents of θt, θr.
- For p = 50 % β0 is otherwise needed only as "p < β0" (false: β0 <= β0max < 50 %) and
  through Esβ weighted by Fi = 0.
- Without ducting, where θ makes Fj (eq. 57) exactly 0, the blend is Lbd and Lbs
  (eq. 44): where Lbs is `TROPO_NEGLIGIBLE_DB` above Lbd that is Lbd to 2.2e-8 dB,
  decided on lower bounds of θ and of Lbs (most cells), without the arctangents and the
  logarithm.
- Where the ray between the smooth-Earth heights clears the Earth by more than any hreq,
  Ldsph = 0 and so is the smooth profile's share of Ld (eqs. 37–39): neither the smooth
  profile nor Ldsph is evaluated (70 % of the cells), and the obstruction of eqs. (87)–(89),
  which only raises those heights, is taken only where they do not clear without it.
- The smooth profile's line-of-sight ν has a closed-form upper bound (`_smooth_geometry`);
  where it is below ν = -0.78 at every frequency J(ν) = 0 without the bisection.
- Troposcatter's path-independent terms and the location margin are computed per site.

Cost: measured on the benchmark's 4000 x 4000 synthetic DEM (30 m, relief 2500 m), 20 km
radius, step 3 (155,000 cells, 1.05 million ray samples), one frequency, one thread:
about 60 ms against 17 ms for GDAL's viewshed (86 ms before the shortcuts above, the
table and `registry.radio.pathloss.log10`). About 40 % of it is the walk (one hull per
sample at p = 50 %), 20 % the cells' records, 40 % their formulas.
"""

from __future__ import annotations

import math

import numpy as np

from registry.radio._kernels import (
    _J_STEP,
    _J_TABLE,
    F32,
    F64,
    I64,
    _best_edge,
    _cone,
    _hull_push,
    _inline,
    _jit,
    _lattice_step,
    _ray_end,
    _sample,
    _sample_step,
    _signed_sqrt,
    ray_profile,
)
from registry.radio.diffraction import KNIFE_EDGE_V_MIN, knife_edge_loss_db
from registry.radio.p1812 import (
    AREA_WIDTH_DEFAULT_M,
    COAST_FAR_KM,
    DELTA_N_DEFAULT,
    EARTH_RADIUS_KM,
    FJ_ZERO_THETA_MRAD,
    FREQ_MAX_GHZ,
    FREQ_MIN_GHZ,
    K_BETA,
    LAT_DEFAULT_DEG,
    N0_DEFAULT,
    SPEED_OF_LIGHT_GM_S,
    beta0_max_pct,
    beta0_pct,
    blend_db,
    bullington_point_nu,
    bullington_tail_db,
    ducting_fixed_terms,
    ducting_time_db,
    ducting_time_floor_db,
    earth_clearance_m,
    free_space_db,
    interpolation_factor,
    largest_hreq_m,
    location_loss_db,
    location_margin_db,
    location_sigma_db,
    multipath_correction_db,
    slant_distance_km,
    spherical_earth_db,
    troposcatter_base_db,
    troposcatter_db,
)
from registry.radio.pathloss import log10

# Lbs (eq. 44) this far above Lbam moves Lbc (eq. 63) by under 5 log10(1 + 1e-8) = 2.2e-8 dB
# (the float32 output's resolution is 8e-6 dB at 100 dB): the sweep takes Lbc = Lbam there
TROPO_NEGLIGIBLE_DB = 40.0

# rounding allowance of the bounds that skip exact work (dB, or ν sqrt(λ)): far above the
# rounding of the computed terms, far below any effect on a loss
ROUNDING_MARGIN = 1e-9

# columns of `_freq_terms`
_T_TROPO, _T_MARGIN, _T_CBRT, _T_TROPO_FS = 0, 1, 2, 3

DB_PER_NEPER_20 = 20.0 / math.log(10.0)  # 20 log10(x) = DB_PER_NEPER_20 ln(x)

# per-ray scalars kept in one array (passed by reference between the walk and the cells):
# the smooth-Earth sums and, from _TOP on, each hull's largest slope from the transmitter
_V1, _V2, _D_PREV, _H_PREV, _TOP = 0, 1, 2, 3, 4

# fields of a cell's `_cell_geometry` record: its distance (m), ground height and number
# of samples before it; the ae hull's line of sight, x, slopes and tangent vertices'
# distances (`_real_geometry`); the smooth-Earth heights of eqs. (85)–(86) and, after the
# obstruction of eqs. (87)–(89), the htc, hrc of Ldsph and whether it may be > 0; the aβ
# hull's line of sight, x and slopes
_R_D, _R_Z, _R_COUNT, _R_LOS, _R_X, _R_ST, _R_SR, _R_DT, _R_DR = 0, 1, 2, 3, 4, 5, 6, 7, 8
_R_HST, _R_HSR, _R_HTC, _R_HRC, _R_SMOOTH = 9, 10, 11, 12, 13
_R_LOS_B, _R_X_B, _R_ST_B, _R_SR_B = 14, 15, 16, 17
_R_FIELDS = 18


@_inline
def _tangent_from_left(hd: F64, hz: F64, m: int, x0: float, z0: float) -> int:
    """Vertex of hd/hz[:m] (all right of x0) with the largest slope from (x0, z0); first on ties."""
    lo, hi = 0, m - 1
    while lo < hi:
        i = (lo + hi) // 2
        if (z0 - hz[i]) * (hd[i + 1] - hd[i]) > (hz[i + 1] - hz[i]) * (x0 - hd[i]):
            lo = i + 1
        else:
            hi = i
    return lo


@_inline
def _tangent_from_right(hd: F64, hz: F64, m: int, x0: float, z0: float) -> int:
    """Vertex of hd/hz[:m] (all left of x0) with the largest slope seen from (x0, z0)."""
    lo, hi = 0, m - 1
    while lo < hi:
        i = (lo + hi) // 2
        if (z0 - hz[i]) * (hd[i + 1] - hd[i]) < (hz[i + 1] - hz[i]) * (x0 - hd[i]):
            lo = i + 1
        else:
            hi = i
    return lo


@_inline
def _from_tx(hd: F64, hz: F64, m: int, z_tx: float, top: int) -> int:
    """Vertex of hd/hz[:m] with the largest slope from the transmitter (0, z_tx), first on
    ties: `top`, the walk's running maximum, unless it is beyond the first m."""
    return top if top < m else _tangent_from_left(hd, hz, m, 0.0, z_tx)


@_inline
def _horizon_angles(
    slope_t: float, slope_r: float, d: float, a: float
) -> tuple[float, float, float]:
    """θt, θr and θ (mrad, eqs. 76–80) from the horizon slopes, at distance d and radius a (m)."""
    theta_t = 1000.0 * math.atan(slope_t)
    theta_r = 1000.0 * math.atan(slope_r)
    return theta_t, theta_r, 1000.0 * d / a + theta_t + theta_r


@_inline
def _atan_floor(s: float) -> float:
    """A lower bound of atan(s) without the arctangent: s / sqrt(1 + s²) (its sine) for
    s >= 0, s itself below."""
    return s / math.sqrt(1.0 + s * s) if s >= 0.0 else s


@_inline
def _before(hd: F64, m: int, d: float) -> int:
    """Number of leading vertices of hd[:m] strictly before distance d."""
    while m > 0 and hd[m - 1] >= d:
        m -= 1
    return m


@_inline
def _real_geometry(
    hd: F64, hz: F64, m: int, sc: F64, d: float, z_tx: float, z_rx: float, i_t: int
) -> tuple[bool, float, float, float, int, int]:
    """Bullington geometry of the real profile on a hull lowered for radius a.

    `z_rx` is the receiver lowered like the hull and `i_t` the vertex of `_from_tx`.
    Returns (los, x, s_t, s_r, i_t, i_r):
    on line-of-sight paths x = ν sqrt(λ) of the largest-ν vertex (-inf without vertices),
    else the slopes (m/m) from the transmitter and from the receiver to their tangent
    vertices i_t, i_r.
    """
    if m == 0:
        return True, -math.inf, 0.0, 0.0, -1, -1
    s_t = (hz[i_t] - z_tx) / hd[i_t]
    if s_t < (z_rx - z_tx) / d:
        return (
            True,
            _signed_sqrt(_best_edge(hd, hz, 0, m, 0.0, z_tx, d, z_rx, sc)[1]),
            0.0,
            0.0,
            -1,
            -1,
        )
    i_r = _tangent_from_right(hd, hz, m, d, z_rx)
    return False, 0.0, s_t, (hz[i_r] - z_rx) / (d - hd[i_r]), i_t, i_r


@_inline
def _smooth_geometry(
    count: int, seg_km: float, d_km: float, a_km: float, htc: float, hrc: float, x_zero: float
) -> tuple[bool, float, float, float]:
    """Bullington geometry of the smooth (zero-height) profile at samples i seg, i = 1..count.

    Returns (los, x, stim, srim) as `_real_geometry`, slopes in m/km (eqs. 14, 18). On a
    line-of-sight path whose x is bounded by `x_zero` (where J(ν) = 0 at every frequency)
    x is that bound, not the largest: with t² = x / (d - x), ν sqrt(λ) / sqrt(0.002 d) is
    c d t / (1 + t²) - (htc / t + hrc t) / d <= c d / 2 - 2 sqrt(htc hrc) / d.
    """
    if count == 0:
        return True, -math.inf, 0.0, 0.0
    c = 500.0 / a_km

    def stim_at(i: int) -> float:
        x = i * seg_km
        return c * (d_km - x) - htc / x

    def srim_at(i: int) -> float:
        x = i * seg_km
        return c * x - hrc / (d_km - x)

    i = min(max(int(math.sqrt(htc / c) / seg_km), 1), count)
    stim = max(stim_at(i), stim_at(min(i + 1, count)))
    if stim < (hrc - htc) / d_km:
        if htc > 0.0 and hrc > 0.0:
            bound = (0.5 * c * d_km - 2.0 * math.sqrt(htc * hrc) / d_km) * math.sqrt(0.002 * d_km)
            if bound < x_zero - ROUNDING_MARGIN:
                return True, bound, 0.0, 0.0

        def nu_at(i: int) -> float:  # ν sqrt(λ), eq. (16)
            x = i * seg_km
            h = c * x * (d_km - x) - (htc * (d_km - x) + hrc * x) / d_km
            return h * math.sqrt(0.002 * d_km / (x * (d_km - x)))

        lo, hi = 1, count
        while lo < hi:  # unimodal in i
            mid = (lo + hi) // 2
            if nu_at(mid + 1) > nu_at(mid):
                lo = mid + 1
            else:
                hi = mid
        return True, nu_at(lo), 0.0, 0.0
    i = min(max(int((d_km - math.sqrt(hrc / c)) / seg_km), 1), count)
    return False, 0.0, stim, max(srim_at(i), srim_at(min(i + 1, count)))


@_inline
def _obstruction(
    hd: F64,
    hz: F64,
    m: int,
    a: float,
    d: float,
    hts: float,
    hrs: float,
    z_rx: float,
    i_t: int,
    s_t: float,
    i_r: int,
    s_r: float,
) -> tuple[float, float, float]:
    """hobs, αobt and αobr (eqs. 87–88) of a line-of-sight-obstructed profile, from its hull
    hd/hz[:m] lowered by x² / (2a) and the tangents of `_real_geometry`: from the
    transmitter (hts) to vertex i_t at slope s_t, from the lowered receiver z_rx to i_r.

    Each is the profile's largest value of a function of a point's raw height z and
    distance x. On the lowered heights that function is, along a hull edge, linear plus
    c / x or c / (d - x) plus linear: convex for c >= 0, monotone for c < 0 (increasing,
    respectively decreasing), so its largest value over the samples under an edge is at
    one of the edge's ends: the hull's vertices give the profile's.
    The slopes are each a lowered slope, unimodal along the hull with its peak at i_t or
    i_r, plus a term of x that rises on one side of that peak only: the scan from the
    peak stops where the lowered slope plus that term's largest value cannot win.
    The slopes are taken only where hobs > 0 (NaN otherwise).
    """
    tilt = (hrs - hts) / d
    half_inv_a = 0.5 / a
    cap = hd[m - 1] * half_inv_a  # largest x / (2a) of the vertices
    hobs = -math.inf
    for v in range(m):
        hobs = max(hobs, hz[v] + hd[v] * (hd[v] * half_inv_a - tilt))
    hobs -= hts
    if hobs <= 0.0:
        return hobs, math.nan, math.nan
    # largest (z - hts) / x = lowered slope + x / (2a), at most that slope + cap
    aobt = s_t + hd[i_t] * half_inv_a
    for v in range(i_t + 1, m):
        if hz[v] - hts <= (aobt - cap) * hd[v]:
            break
        aobt = max(aobt, (hz[v] - hts) / hd[v] + hd[v] * half_inv_a)
    # largest (z - hrs) / (d - x) = lowered slope - (d + x) / (2a), at most that slope - floor
    aobr = s_r - (d + hd[i_r]) * half_inv_a
    floor = (d + hd[0]) * half_inv_a
    for v in range(i_r - 1, -1, -1):
        if hz[v] - z_rx <= (aobr + floor) * (d - hd[v]):
            break
        aobr = max(aobr, (hz[v] - z_rx) / (d - hd[v]) - (d + hd[v]) * half_inv_a)
    return hobs, aobt - tilt, aobr + tilt


def _tail_table(rows: int) -> F64:
    """Rows (J, step J', G, step G') at the first `rows` ν of `_kernels._J_TABLE` (J(ν) of
    P.526 eq. 31, its limit from above at -0.78) with G = 1 - exp(-J / 6) (eq. 21), for
    cubic Hermite interpolation."""
    j = _J_TABLE[:rows]
    w = KNIFE_EDGE_V_MIN - 0.1 + _J_STEP * np.arange(rows)
    dj = 20.0 / math.log(10.0) / np.sqrt(w * w + 1.0)
    e = np.exp(-j / 6.0)
    return np.ascontiguousarray(np.stack([j, _J_STEP * dj, 1.0 - e, _J_STEP * e * dj / 6.0], 1))


# the Bullington tail's table up to ν = 127.22: J within 6.7e-7 dB and G within 6.2e-8, so
# the tail within 6.7e-7 + 6.2e-8 (10 + 0.02 d) dB, 1e-6 dB up to 500 km
# (`test_bullington_tail_table`)
_TAIL = _tail_table(2049)


@_inline
def _bullington_tail(nu: float, d_km: float) -> float:
    """`bullington_tail_db(knife_edge_loss_db(nu), d_km)` (eq. 21), by cubic Hermite
    interpolation of `_TAIL` without a logarithm or an exponential (exact beyond it)."""
    if nu <= KNIFE_EDGE_V_MIN:
        return 0.0
    x = (nu - KNIFE_EDGE_V_MIN) * (1.0 / _J_STEP)
    if not x < _TAIL.shape[0] - 1:  # beyond the table, or NaN
        return bullington_tail_db(knife_edge_loss_db(nu), d_km)
    i = int(x)
    t = x - i
    u = 1.0 - t
    h00, h10, h01, h11 = (1.0 + 2.0 * t) * u * u, t * u * u, t * t * (3.0 - 2.0 * t), -t * t * u
    j = h00 * _TAIL[i, 0] + h10 * _TAIL[i, 1] + h01 * _TAIL[i + 1, 0] + h11 * _TAIL[i + 1, 1]
    g = h00 * _TAIL[i, 2] + h10 * _TAIL[i, 3] + h01 * _TAIL[i + 1, 2] + h11 * _TAIL[i + 1, 3]
    return float(j + g * (10.0 + 0.02 * d_km))


@_inline
def _bullington(
    los: bool,
    x: float,
    stim: float,
    srim: float,
    hts: float,
    hrs: float,
    d_km: float,
    lam: float,
) -> float:
    """Lbull (eq. 21) from a geometry of `_real_geometry` / `_smooth_geometry`."""
    nu = x / math.sqrt(lam) if los else bullington_point_nu(stim, srim, hts, hrs, d_km, lam)
    return _bullington_tail(nu, d_km)


@_inline
def _cell_geometry(
    hulls: F64,
    sizes: I64,
    tops: I64,
    sc: F64,
    acc: F64,
    count: int,
    d: float,
    z_cell: float,
    z_tx: float,
    h1: float,
    rx_h: float,
    a_m: F64,
    lam_max: float,
    rec: F64,
) -> None:
    """The part of a receiver's prediction that needs the walked ray's state, into `rec`.

    The receiver is at distance d (m) after samples 1..count; `hulls[k]` (k = 0 heights
    lowered for ae, 1 for aβ) are (distance, height) rows of the upper hulls with sizes
    `sizes[k]` and vertices `tops[k]` of largest slope from the transmitter; `acc` holds
    the smooth-Earth running sums up to the last sample. `rec` gets the fields _R_*.
    """
    hts = z_tx
    hrs = z_cell + rx_h
    d_km = d / 1000.0
    # horizons and the real profile's Bullington geometry at ae (Attachment 1, §4.3.1)
    he_d, he_z = hulls[0, 0], hulls[0, 1]
    m_e = _before(he_d, sizes[0], d)
    z_rx_e = hrs - d * d / (2.0 * a_m[0])
    i_t = _from_tx(he_d, he_z, m_e, z_tx, tops[0])
    los, x_e, s_t, s_r, i_t, i_r = _real_geometry(he_d, he_z, m_e, sc, d, z_tx, z_rx_e, i_t)
    # smooth-Earth surfaces (eqs. 83–89), on the raw heights
    v1 = acc[_V1] + (d_km - acc[_D_PREV]) * (z_cell + acc[_H_PREV])
    v2 = acc[_V2] + (d_km - acc[_D_PREV]) * (
        z_cell * (2.0 * d_km + acc[_D_PREV]) + acc[_H_PREV] * (d_km + 2.0 * acc[_D_PREV])
    )
    hst = (2.0 * v1 * d_km - v2) / (d_km * d_km)
    hsr = (v2 - v1 * d_km) / (d_km * d_km)
    rec[_R_HST], rec[_R_HSR] = hst, hsr
    htc = hts - min(hst, h1)
    hrc = hrs - min(hsr, z_cell)
    # Ldsph (eqs. 22-28) is 0 at every frequency and radius where the ray between the
    # smooth-Earth heights clears the Earth by more than any hreq; there max(Ldsph -
    # Lbulls, 0) = 0 (Lbulls >= 0) and the smooth profile does not matter. The obstruction
    # of eqs. (87)-(89) only raises those heights: taken where they do not clear without it
    a_min_km = a_m.min() / 1000.0
    hreq_m = largest_hreq_m(d_km, lam_max) + ROUNDING_MARGIN
    clear = earth_clearance_m(d_km, htc, hrc, a_min_km) > hreq_m  # False for NaN
    # line of sight at ae puts every sample under the chord: hobs < 0
    if not los and not clear:
        hobs, aobt, aobr = _obstruction(
            he_d, he_z, m_e, a_m[0], d, hts, hrs, z_rx_e, i_t, s_t, i_r, s_r
        )
        if hobs > 0.0:
            htc = hts - min(hst - hobs * aobt / (aobt + aobr), h1)
            hrc = hrs - min(hsr - hobs * aobr / (aobt + aobr), z_cell)
            clear = earth_clearance_m(d_km, htc, hrc, a_min_km) > hreq_m
    rec[_R_D], rec[_R_Z], rec[_R_COUNT] = d, z_cell, count
    rec[_R_LOS], rec[_R_X], rec[_R_ST], rec[_R_SR] = los, x_e, s_t, s_r
    rec[_R_DT] = he_d[i_t] if i_t >= 0 else math.nan
    rec[_R_DR] = he_d[i_r] if i_r >= 0 else math.nan
    rec[_R_HTC], rec[_R_HRC] = htc, hrc
    rec[_R_SMOOTH] = not clear
    if sizes.shape[0] > 1:
        hb_d, hb_z = hulls[1, 0], hulls[1, 1]
        m_b = _before(hb_d, sizes[1], d)
        z_rx_b = hrs - d * d / (2.0 * a_m[1])
        i_tb = _from_tx(hb_d, hb_z, m_b, z_tx, tops[1])
        los_b, x_b, s_tb, s_rb, _, _ = _real_geometry(hb_d, hb_z, m_b, sc, d, z_tx, z_rx_b, i_tb)
        rec[_R_LOS_B], rec[_R_X_B], rec[_R_ST_B], rec[_R_SR_B] = los_b, x_b, s_tb, s_rb


@_inline
def _cell_loss(
    rec: F64,
    zs: F64,
    seg: float,
    z_tx: float,
    h1: float,
    rx_h: float,
    a_m: F64,
    freqs: F64,
    terms: F64,
    p_pct: float,
    lat_deg: float,
    beta0_max: float,
    x_zero: float,
    vertical: bool,
    out: F64,
) -> None:
    """P.1812 loss per frequency at a receiver from its `_cell_geometry` record.

    `zs[s]` is the ray's sample s (`seg` metres apart); `terms` the site's per-frequency
    constants of `_freq_terms`; `beta0_max` and `x_zero` those of `_site_terms`.
    Evaluated after the ray's walk, cell after cell, so that the formulas' long chains of
    dependent operations (divisions, roots, logarithms) of successive cells overlap.
    """
    use_beta = a_m.shape[0] > 1
    d, z_cell = rec[_R_D], rec[_R_Z]
    hts = z_tx
    hrs = z_cell + rx_h
    d_km = d / 1000.0
    ae_km = a_m[0] / 1000.0
    los, x_e, s_t, s_r = rec[_R_LOS] != 0.0, rec[_R_X], rec[_R_ST], rec[_R_SR]
    dist_t, dist_r = rec[_R_DT], rec[_R_DR]  # of the tangent vertices, NaN without
    # the horizon elevation angles (eqs. 76–79) are arctangents of these slopes; the losses
    # that can be decided on lower bounds of them (the ducting floor, a blend with Fj = 0
    # and a negligible Lbs) are, the arctangents are taken at the first other need
    if los:
        slope_t = (hrs - d * d / (2.0 * a_m[0]) - z_tx) / d
        slope_r = (z_tx - hrs) / d - d / (2.0 * a_m[0])
    else:
        slope_t = s_t
        slope_r = s_r - d / a_m[0]
    theta_t_lb = 1000.0 * _atan_floor(slope_t)
    theta_r_lb = 1000.0 * _atan_floor(slope_r)
    theta_lb = 1000.0 * d / a_m[0] + theta_t_lb + theta_r_lb
    theta_t = theta_r = theta = math.nan
    dlt_km = dist_t / 1000.0 if dist_t == dist_t else 0.5 * d_km
    dlr_km = (d - dist_r) / 1000.0 if dist_r == dist_r else 0.5 * d_km
    geo_a = (los, x_e, 1000.0 * (s_t + d / (2.0 * a_m[0])), 1000.0 * (s_r - d / (2.0 * a_m[0])))
    # -10 log10(dfs² / d²) (eq. 8) >= -(10 / ln 10) (dfs² / d² - 1)
    slant_floor_db = -0.5 * DB_PER_NEPER_20 * ((hts - hrs) / d) ** 2
    # ducting's effective heights and the roughness between the horizons (eqs. 90–93)
    hst_d = min(rec[_R_HST], h1)
    hsr_d = min(rec[_R_HSR], z_cell)
    hm = math.nan  # scanned only where ducting is evaluated
    htc, hrc = rec[_R_HTC], rec[_R_HRC]
    smooth = rec[_R_SMOOTH] != 0.0
    geo_as = geo_bs = (True, -math.inf, 0.0, 0.0)
    if smooth:
        # the smooth profile's samples before the receiver
        n_s = int(rec[_R_COUNT])
        while n_s > 0 and n_s * seg >= d:
            n_s -= 1
        geo_as = _smooth_geometry(n_s, seg / 1000.0, d_km, ae_km, htc, hrc, x_zero)
        if use_beta:
            geo_bs = _smooth_geometry(n_s, seg / 1000.0, d_km, a_m[1] / 1000.0, htc, hrc, x_zero)
    geo_b = geo_a
    if use_beta:
        geo_b = (
            rec[_R_LOS_B] != 0.0,
            rec[_R_X_B],
            1000.0 * (rec[_R_ST_B] + d / (2.0 * a_m[1])),
            1000.0 * (rec[_R_SR_B] - d / (2.0 * a_m[1])),
        )
    # β0 (eq. 5) only where a value needs it: Fi and Esβ for p < 50 %, else ducting that
    # can reach the blend; elsewhere the blend only compares p = 50 % with β0 <= β0max
    # (false either way) and weights Esβ by Fi = 0
    beta0 = beta0_pct(lat_deg, d_km, d_km) if use_beta else math.nan
    dfs_km = slant_distance_km(d_km, hts, hrs)  # of every frequency's ducting bound
    for f in range(freqs.shape[0]):
        f_ghz = freqs[f] / 1000.0
        lam = SPEED_OF_LIGHT_GM_S / f_ghz
        lbfs = free_space_db(f_ghz, d_km, hts, hrs)
        lb0p = lbfs + multipath_correction_db(p_pct, dlt_km + dlr_km)
        lbulla = _bullington(geo_a[0], geo_a[1], geo_a[2], geo_a[3], hts, hrs, d_km, lam)
        ld50 = lbulla
        if smooth:
            lbulls = _bullington(geo_as[0], geo_as[1], geo_as[2], geo_as[3], htc, hrc, d_km, lam)
            ldsph = spherical_earth_db(d_km, htc, hrc, ae_km, f_ghz, lam, 0.0, vertical)
            ld50 += max(ldsph - lbulls, 0.0)
        ldb = ld50
        fi = 0.0
        if use_beta:
            ldb = _bullington(geo_b[0], geo_b[1], geo_b[2], geo_b[3], hts, hrs, d_km, lam)
            if smooth:
                lbulls = _bullington(
                    geo_bs[0], geo_bs[1], geo_bs[2], geo_bs[3], htc, hrc, d_km, lam
                )
                ldsph = spherical_earth_db(
                    d_km, htc, hrc, a_m[1] / 1000.0, f_ghz, lam, 0.0, vertical
                )
                ldb += max(ldsph - lbulls, 0.0)
            fi = interpolation_factor(p_pct, beta0)
        ldp = ld50 + fi * (ldb - ld50)
        lbd = lb0p + ldp
        lba = math.inf  # no intermediate point: no horizon to couple into a duct
        if dist_t == dist_t:
            # Lminbap (eq. 60) >= Lba >= a_db + 20 log10(arg) + the time floor: above Lbd
            # the blend takes Lbda = Lbd (eq. 61) whatever Lba is, the same as for
            # Lba = inf. Both terms grow with θt and θr, and 20 log10(arg) =
            # Lbfs - 92.4 + 20 log10(x) (eq. 8) with x = arg / (f dfs), at least
            # Lbfs - 92.4 + (20 / ln 10)(1 - 1 / x): most cells are decided on that bound
            room = lbd + ROUNDING_MARGIN - ducting_time_floor_db(p_pct, d_km, beta0_max)
            a_db, arg = ducting_fixed_terms(
                f_ghz, terms[f, _T_CBRT], d_km, dlt_km, dlr_km, theta_t_lb, theta_r_lb, hts,
                hrs, ae_km, 0.0, COAST_FAR_KM, COAST_FAR_KM,
            )  # fmt: skip
            fdfs = f_ghz * dfs_km
            if a_db + lbfs - 92.4 + DB_PER_NEPER_20 * (1.0 - fdfs / arg) <= room:
                if theta != theta:
                    theta_t, theta_r, theta = _horizon_angles(slope_t, slope_r, d, a_m[0])
                a_db, arg = ducting_fixed_terms(
                    f_ghz, terms[f, _T_CBRT], d_km, dlt_km, dlr_km, theta_t, theta_r, hts,
                    hrs, ae_km, 0.0, COAST_FAR_KM, COAST_FAR_KM,
                )  # fmt: skip
                lba_fixed = a_db + 20.0 * log10(arg)
                if lba_fixed <= room:
                    if beta0 != beta0:
                        beta0 = beta0_pct(lat_deg, d_km, d_km)
                    if hm != hm:
                        hm = -math.inf
                        slope_km = (hsr_d - hst_d) / d_km
                        for smp in range(int(dist_t / seg + 0.5), int(dist_r / seg + 0.5) + 1):
                            hm = max(hm, zs[smp] - (hst_d + slope_km * smp * seg / 1000.0))
                    lba = lba_fixed + ducting_time_db(
                        p_pct, d_km, dlt_km, dlr_km, hts - hst_d, hrs - hsr_d, hm, ae_km,
                        beta0, d_km,
                    )  # fmt: skip
        # without ducting and with Fj = 0 the blend is Lbd unless Lbs (eq. 44, with 20 log10 d
        # = Lbfs - 92.4 - 20 log10 f + 10 log10(d² / dfs²)) comes within TROPO_NEGLIGIBLE_DB
        lbs_floor = lbfs + terms[f, _T_TROPO_FS] + slant_floor_db + 0.573 * theta_lb
        if (
            lba == math.inf
            and theta_lb >= FJ_ZERO_THETA_MRAD
            and lbs_floor - lbd >= TROPO_NEGLIGIBLE_DB
        ):
            lbc = lbd
        else:
            if theta != theta:
                theta_t, theta_r, theta = _horizon_angles(slope_t, slope_r, d, a_m[0])
            lbs = troposcatter_db(terms[f, _T_TROPO], d_km, theta)
            b0 = beta0 if beta0 == beta0 else beta0_max
            lb0b = lbfs  # Esβ weighs in the blend only through Fi (eq. 59)
            if fi > 0.0:
                lb0b += multipath_correction_db(b0, dlt_km + dlr_km)
            lbc = blend_db(lbfs, lb0p, lb0b, ld50, ldp, lba, lbs, theta, d_km, 0.0, p_pct, b0, fi)[
                5
            ]
        out[f] = location_loss_db(lb0p, lbc, terms[f, _T_MARGIN])


@_inline
def _ray_state(n: int, nh: int) -> tuple[F64, I64, I64, F64, F64]:
    """A walked ray's arrays for rays of up to n samples and nh hulls (`_cell_geometry`):
    hulls, their sizes and tops, the edge-score scratch and the per-ray scalars."""
    return (
        np.empty((nh, 2, n + 1)),
        np.zeros(nh, dtype=np.int64),
        np.zeros(nh, dtype=np.int64),
        np.empty(n + 1),
        np.empty(_TOP + nh),
    )


@_inline
def _start_ray(sizes: I64, acc: F64, h1: float) -> None:
    """Empty hulls and sums for a ray from the site (ground height h1)."""
    sizes[:] = 0
    acc[_V1] = acc[_V2] = acc[_D_PREV] = 0.0
    acc[_H_PREV] = h1
    acc[_TOP:] = -math.inf


@_inline
def _push_sample(
    hulls: F64, sizes: I64, tops: I64, acc: F64, a_m: F64, z_tx: float, ds: float, z: float
) -> None:
    """Add a ray sample (ds metres, terrain z) to the hulls, their vertices of largest slope
    from the transmitter and the smooth-Earth sums.

    That vertex stays on the hull until a sample of larger slope comes (the samples between
    lie under the line through it), so a running maximum finds it; strictly larger keeps
    the first on ties, like `_tangent_from_left`.
    """
    for k in range(sizes.shape[0]):
        lowered = z - ds * ds / (2.0 * a_m[k])
        sizes[k] = _hull_push(hulls[k, 0], hulls[k, 1], sizes[k], ds, lowered)
        slope = (lowered - z_tx) / ds
        if slope > acc[_TOP + k]:
            acc[_TOP + k] = slope
            tops[k] = sizes[k] - 1
    d_km = ds / 1000.0
    step = d_km - acc[_D_PREV]
    acc[_V1] += step * (z + acc[_H_PREV])
    acc[_V2] += step * (
        z * (2.0 * d_km + acc[_D_PREV]) + acc[_H_PREV] * (d_km + 2.0 * acc[_D_PREV])
    )
    acc[_D_PREV] = d_km
    acc[_H_PREV] = z


@_inline
def _radii(delta_n: float, p_pct: float) -> F64:
    """Effective Earth radii in m of the hulls: ae, then aβ when p < 50 %."""
    a_m = np.empty(2 if p_pct < 50.0 else 1)
    a_m[0] = 1000.0 * EARTH_RADIUS_KM * 157.0 / (157.0 - delta_n)
    if p_pct < 50.0:
        a_m[1] = 1000.0 * EARTH_RADIUS_KM * K_BETA
    return a_m


@_inline
def _check(freqs: F64, p_pct: float, pl_pct: float) -> None:
    for f in range(freqs.shape[0]):
        if not FREQ_MIN_GHZ * 1000.0 <= freqs[f] <= FREQ_MAX_GHZ * 1000.0:
            raise ValueError("P.1812 covers 30-6000 MHz")
    if not 1.0 <= p_pct <= 50.0:
        raise ValueError("P.1812 time percentage must be within 1-50 %")
    if not 1.0 <= pl_pct <= 99.0:
        raise ValueError("P.1812 location percentage must be within 1-99 %")


@_inline
def _freq_terms(
    freqs: F64,
    p_pct: float,
    pl_pct: float,
    n0: float,
    rx_h: float,
    sigma_l_db: float,
    area_width_m: float,
) -> F64:
    """Per-frequency constants of a site's cells: rows of (troposcatter's path-independent
    terms, the location margin of eq. 69, f^(1/3), and the troposcatter terms less free
    space at 1 km)."""
    terms = np.empty((freqs.shape[0], 4))
    for f in range(freqs.shape[0]):
        f_ghz = freqs[f] / 1000.0
        sigma = sigma_l_db
        if sigma < 0.0:
            sigma = location_sigma_db(f_ghz, rx_h, 0.0, area_width_m)
        terms[f, _T_TROPO] = troposcatter_base_db(f_ghz, n0, p_pct)
        terms[f, _T_MARGIN] = location_margin_db(pl_pct, sigma)
        terms[f, _T_CBRT] = np.cbrt(f_ghz)
        terms[f, _T_TROPO_FS] = terms[f, _T_TROPO] - free_space_db(f_ghz, 1.0, 0.0, 0.0)
    return terms


@_inline
def _site_terms(freqs: F64, lat_deg: float) -> tuple[float, float, float]:
    """A site's constants of every cell: (β0max of `beta0_max_pct`, the longest wavelength
    (m), ν sqrt(λ) at or below which J(ν) = 0 at every frequency)."""
    lam_max = SPEED_OF_LIGHT_GM_S / (freqs.min() / 1000.0)
    return beta0_max_pct(lat_deg), lam_max, KNIFE_EDGE_V_MIN * math.sqrt(lam_max)


@_inline
def _site_loss(f_ghz: float, z_tx: float, z_rx: float) -> float:
    """The site's own cell: free space over the height difference (at least 1 m)."""
    return free_space_db(f_ghz, 0.0, z_tx, z_tx - max(abs(z_tx - z_rx), 1.0))


@_jit
def p1812_sweep(
    win: F32,
    n: int,
    step: int,
    phase_r: int,
    phase_c: int,
    d_row: float,
    d_col: float,
    z_tx: float,
    rx_h: float,
    inv_2kr: float,
    r_max: float,
    freqs: F64,
    out: F32,
    p_pct: float = 50.0,
    pl_pct: float = 50.0,
    lat_deg: float = LAT_DEFAULT_DEG,
    delta_n: float = DELTA_N_DEFAULT,
    n0: float = N0_DEFAULT,
    vertical: bool = True,
    sigma_l_db: float = -1.0,
    area_width_m: float = AREA_WIDTH_DEFAULT_M,
) -> None:
    """P.1812-8 basic transmission loss from the site to every lattice cell of the window.

    Parameters
    ----------
    win, n, step, phase_r, phase_c, d_row, d_col, z_tx, rx_h, r_max, freqs, out
        As in `registry.radio._kernels.deygout_sweep` (`out` pre-filled with NaN).
    inv_2kr : float
        Unused: P.1812 sets its own effective radii, ae from `delta_n` and aβ = 3 x 6371 km.
    p_pct, pl_pct : float
        Time (1–50) and location (1–99) percentages.
    lat_deg, delta_n, n0 : float
        Path-centre latitude (taken for all paths of the site), ΔN and N0 (§3.5).
    vertical : bool
        Polarisation (vertical, else horizontal).
    sigma_l_db : float
        Location variability; negative: σL of §4.7 for a receiver without clutter in a
        square of `area_width_m`.
    """
    _check(freqs, p_pct, pl_pct)
    nf = freqs.shape[0]
    h1 = win[n, n]
    a_m = _radii(delta_n, p_pct)
    hulls, sizes, tops, sc, acc = _ray_state(n, a_m.shape[0])
    zs = np.empty(n + 1)  # the ray's samples by row
    recs = np.empty((n + 1, _R_FIELDS))  # its cells' `_cell_geometry` records
    cells = np.empty((n + 1, 2), dtype=np.int64)  # and their output rows and columns
    vals = np.empty(nf)
    terms = _freq_terms(freqs, p_pct, pl_pct, n0, rx_h, sigma_l_db, area_width_m)
    beta0_max, lam_max, x_zero = _site_terms(freqs, lat_deg)
    inv_step = 1.0 / step
    r_max2 = r_max * r_max
    if (n - phase_r) % step == 0 and (n - phase_c) % step == 0 and h1 == h1:
        for f in range(nf):
            out[f, (n - phase_r) // step, (n - phase_c) // step] = _site_loss(
                freqs[f] / 1000.0, z_tx, h1 + rx_h
            )
    for cone in range(4):
        ar, ac, br, bc, d_major, d_minor, strict, t_phase, j_phase = _cone(
            cone, n, step, phase_r, phase_c, d_row, d_col
        )
        t_last = min(n, int(r_max / d_major))
        ns = n * step
        j_start = j_phase - step if 2 * j_phase > step else j_phase
        for k in range(-n, n + 1, step):
            seg = math.sqrt(d_major * d_major + (k / n * d_minor) ** 2)
            t_end = _ray_end(t_last, abs(k) / n, 0.5 * step, d_major, d_minor, r_max2)
            _start_ray(sizes, acc, h1)
            # ray position and nearest lattice offset tracked in exact integers, as in
            # deygout_sweep
            j0 = 0
            rem = 0
            j = j_start
            e = -n * j_start
            t_mod = (1 - t_phase) % step
            nc = 0
            for t in range(1, t_end + 1):
                j0, rem = _sample_step(k, n, j0, rem)
                j, e = _lattice_step(k, ns, step, j, e)
                if t_mod == 0 and -t * step < 2 * e <= t * step:
                    aj = abs(j)
                    dist2 = (j * d_minor) ** 2 + (t * d_major) ** 2
                    r = n + t * ar + j * br
                    c = n + t * ac + j * bc
                    z_cell = win[r, c]
                    if (
                        (aj < t or (aj == t and not strict))
                        and dist2 <= r_max2
                        and z_cell == z_cell
                    ):
                        _cell_geometry(
                            hulls, sizes, tops, sc, acc, t - 1, math.sqrt(dist2), z_cell, z_tx,
                            h1, rx_h, a_m, lam_max, recs[nc],
                        )  # fmt: skip
                        cells[nc, 0] = int((r - phase_r) * inv_step + 0.5)
                        cells[nc, 1] = int((c - phase_c) * inv_step + 0.5)
                        nc += 1
                t_mod += 1
                if t_mod == step:
                    t_mod = 0
                z = _sample(win, n, t, ar, ac, br, bc, j0, rem / n)
                if z != z:
                    break
                zs[t] = z
                _push_sample(hulls, sizes, tops, acc, a_m, z_tx, t * seg, z)
            for q in range(nc):
                _cell_loss(
                    recs[q], zs, seg, z_tx, h1, rx_h, a_m, freqs, terms, p_pct, lat_deg,
                    beta0_max, x_zero, vertical, vals,
                )  # fmt: skip
                for f in range(nf):
                    out[f, cells[q, 0], cells[q, 1]] = vals[f]


@_jit
def p1812_point_losses(
    win: F32,
    n: int,
    step: int,
    d_row: float,
    d_col: float,
    z_tx: float,
    rx_h: float,
    r_max: float,
    drs: I64,
    dcs: I64,
    freq: float,
    out: F64,
    p_pct: float = 50.0,
    pl_pct: float = 50.0,
    lat_deg: float = LAT_DEFAULT_DEG,
    delta_n: float = DELTA_N_DEFAULT,
    n0: float = N0_DEFAULT,
    vertical: bool = True,
    sigma_l_db: float = -1.0,
    area_width_m: float = AREA_WIDTH_DEFAULT_M,
) -> None:
    """`p1812_sweep`'s loss at a few cells (dr, dc) of the window, one frequency (MHz).

    Walks only each cell's owning ray, so a receiver gets the sweep's value (any cell, on
    the analysis lattice or not) in O(distance). NaN beyond the radius or without terrain.
    Other parameters as in `p1812_sweep`.
    """
    freqs = np.array([freq])
    _check(freqs, p_pct, pl_pct)
    h1 = win[n, n]
    a_m = _radii(delta_n, p_pct)
    hulls, sizes, tops, sc, acc = _ray_state(n, a_m.shape[0])
    d = np.empty(n + 1)
    z = np.empty(n + 1)
    val = np.empty(1)
    rec = np.empty(_R_FIELDS)
    terms = _freq_terms(freqs, p_pct, pl_pct, n0, rx_h, sigma_l_db, area_width_m)
    beta0_max, lam_max, x_zero = _site_terms(freqs, lat_deg)
    for q in range(drs.shape[0]):
        out[q] = math.nan
        dr, dc = drs[q], dcs[q]
        dist = math.sqrt((dr * d_row) ** 2 + (dc * d_col) ** 2)
        if dist > r_max or max(abs(dr), abs(dc)) > n:
            continue
        if dr == 0 and dc == 0:
            if h1 == h1:
                out[q] = _site_loss(freq / 1000.0, z_tx, h1 + rx_h)
            continue
        count = ray_profile(win, n, step, d_row, d_col, dr, dc, d, z)
        if count == 0 or z[count - 1] != z[count - 1]:
            continue
        _start_ray(sizes, acc, h1)
        for s in range(1, count - 1):
            _push_sample(hulls, sizes, tops, acc, a_m, z_tx, d[s], z[s])
        seg = d[1] if count > 2 else 0.0
        _cell_geometry(
            hulls, sizes, tops, sc, acc, count - 2, d[count - 1], z[count - 1], z_tx, h1, rx_h,
            a_m, lam_max, rec,
        )  # fmt: skip
        _cell_loss(
            rec, z, seg, z_tx, h1, rx_h, a_m, freqs, terms, p_pct, lat_deg, beta0_max, x_zero,
            vertical, val,
        )  # fmt: skip
        out[q] = val[0]
