"""Compiled kernels of the radio engine (private; use `registry.radio.coverage`).

The radial sweep
================
A site sits at the centre cell [n, n] of a square window of (2n + 1)² DEM
cells (NaN outside the DEM). The window is cut into four cones: down, up
(diagonal cells included) and right, left. In a cone, t = 1..n counts rows
outward along the major axis and j the offset along the minor axis. Rays run
from the site to the positions k = -n..n (every `step`-th one on a coarser
analysis lattice) of the cone's far row: at row t ray k is at j = k t / n.

Sampling. Where a ray crosses row t the terrain is interpolated linearly
between the two straddling cells (on a grid line this is bilinear
interpolation) and lowered by d² / (2 k R) for earth curvature (the same as
adding the bulge d1 d2 / (2 k R) of each receiver's path).

Receivers. Cell (t, j) is evaluated from the rays' samples at rows 1..t-1;
the receiver is the cell centre (its own elevation + receiver height, its
own distance). State per ray, updated in O(1) amortised per sample:

* line of sight (`los_sweep`): the running maximum elevation slope seen from
  the site. A cell's horizon is interpolated linearly between the two rays
  bracketing it (ray positions k t / n on its row); it is visible when its
  own slope reaches that horizon.
* Deygout (`deygout_sweep`): the upper convex hull of the (distance, height)
  samples, kept by the monotone-chain rule. Hulls cannot be interpolated, so
  a cell is evaluated by the nearest ray at its row,
  k = step * floor((2 j n + t step) / (2 t step)) in exact integers: at most
  half a ray spacing (half a cell on the DEM grid) from the cell centre.

Why the hull is enough for Deygout. For c > 0, the points with v >= c lie
above the concave curve h = c sqrt(lambda d1 d2 / 2 d); a point under the
chord between two hull vertices lies under that curve whenever both vertices
do, so it cannot have a larger positive v than both. On obstructed paths
(v_main > 0) the main edge is therefore a hull vertex, and so is every
sub-path edge with v > 0, because the hull of the samples on one side of a
hull vertex is the part of the full hull on that side. The sweep thus gives
the exact 3-edge Deygout of the ray's own profile whenever the edges
obstruct; only edges with v <= 0 (Fresnel-zone clearance losses of at most
6 dB each) may come from the hull rather than the best non-hull sample.
The other difference to an exact per-cell profile is geometric: the profile
is that of the owning ray, not of the straight line to the cell centre.

Loop order. `los_sweep` walks row by row with all rays of a cone at once
(contiguous memory, one float of state per ray); `deygout_sweep` walks ray
by ray (each ray keeps its hull hot in cache). Both use the same cones, rays
and samples (`_cone`, `_sample`).

The scalar model functions (path loss, J(v), antenna pattern) are the public
ones, made callable from compiled code by `numba.extending.register_jitable`.

Kernels are compiled with fastmath flags that keep NaN semantics: NaN marks
missing terrain. A ray is cut at its first NaN sample: cells beyond it are
hidden in `los_sweep` and get no value (NaN) in `deygout_sweep`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from registry.radio.antenna import sector_gain_dbi
from registry.radio.diffraction import knife_edge_loss_db
from registry.radio.pathloss import (
    SPEED_OF_LIGHT_M_S,
    cost231_hata_db,
    free_space_loss_db,
    rma_path_loss_db,
)

LOS_HIDDEN = np.uint8(0)
LOS_VISIBLE = np.uint8(1)
LOS_UNKNOWN = np.uint8(255)  # out of range or no terrain data
_FAR = 1e300  # finite stand-in for an infinite slope (keeps interpolation NaN-free)

# No "nnan"/"ninf": NaN marks missing terrain and must survive optimisation.
_FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
_JIT = {"cache": True, "nogil": True, "fastmath": _FASTMATH, "error_model": "numpy"}
_INLINE = {**_JIT, "inline": "always"}


@njit(**_INLINE)
def _cone(cone, n, step, phase_r, phase_c, d_row, d_col):
    """Axes of a cone: (ar, ac, br, bc, d_major, d_minor, strict, t_phase, j_phase).

    Window cell of (t, j) is [n + t ar + j br, n + t ac + j bc]; lattice rows
    satisfy t = t_phase (mod step), lattice offsets j = j_phase (mod step).
    """
    if cone == 0:
        ar, ac, br, bc, d_major, d_minor = 1, 0, 0, 1, d_row, d_col
    elif cone == 1:
        ar, ac, br, bc, d_major, d_minor = -1, 0, 0, 1, d_row, d_col
    elif cone == 2:
        ar, ac, br, bc, d_major, d_minor = 0, 1, 1, 0, d_col, d_row
    else:
        ar, ac, br, bc, d_major, d_minor = 0, -1, 1, 0, d_col, d_row
    if ar != 0:
        t_phase = (ar * (phase_r - n)) % step
        j_phase = (phase_c - n) % step
    else:
        t_phase = (ac * (phase_c - n)) % step
        j_phase = (phase_r - n) % step
    return ar, ac, br, bc, d_major, d_minor, cone >= 2, t_phase, j_phase


@njit(**_INLINE)
def _sample(win, n, t, ar, ac, br, bc, j0, frac):
    """Terrain where a ray crosses row t at j0 + frac (0 <= frac < 1)."""
    r = n + t * ar + j0 * br
    c = n + t * ac + j0 * bc
    z0 = win[r, c]
    j1 = min(j0 + 1, n)
    z1 = win[n + t * ar + j1 * br, n + t * ac + j1 * bc]
    return z0 + frac * (z1 - z0) if frac > 0.0 else z0


@njit(**_JIT)
def los_sweep(win, n, step, phase_r, phase_c, d_row, d_col, z_tx, rx_h, inv_2kr, r_max, out):
    """Line of sight from the site to every lattice cell of the window.

    Parameters
    ----------
    win : float32[2n+1, 2n+1]
        Terrain, site at [n, n], NaN = no data.
    n, step : int
        Half-width (a multiple of step) and the odd analysis step.
    phase_r, phase_c : int
        First window row/column on the analysis lattice.
    d_row, d_col : float
        Cell size along y and x, metres.
    z_tx : float
        Absolute elevation of the observer (antenna), metres.
    rx_h : float
        Target height above ground, metres.
    inv_2kr : float
        1 / (2 k R), 1/metres.
    r_max : float
        Radius, metres.
    out : uint8[nI, nJ]
        LOS_VISIBLE / LOS_HIDDEN on the lattice; must be pre-filled with LOS_UNKNOWN.
    """
    n_rays = 2 * (n // step) + 1
    slope = np.empty(n_rays)  # minor offset per major row
    seg2 = np.empty(n_rays)  # squared distance per major row
    inv_seg = np.empty(n_rays)
    state = np.empty(n_rays)  # running maximum elevation slope seen from the site
    inv_step = 1.0 / step
    r_max2 = r_max * r_max
    if (n - phase_r) % step == 0 and (n - phase_c) % step == 0 and win[n, n] == win[n, n]:
        out[(n - phase_r) // step, (n - phase_c) // step] = LOS_VISIBLE
    for cone in range(4):
        ar, ac, br, bc, d_major, d_minor, strict, t_phase, j_phase = _cone(
            cone, n, step, phase_r, phase_c, d_row, d_col
        )
        for i in range(n_rays):
            slope[i] = (i * step - n) / n
            seg2[i] = d_major * d_major + (slope[i] * d_minor) ** 2
            inv_seg[i] = 1.0 / math.sqrt(seg2[i])
            state[i] = -_FAR
        t_last = min(n, int(r_max / d_major))
        for t in range(1, t_last + 1):
            dt2 = (t * d_major) ** 2
            if (t - t_phase) % step == 0 and dt2 <= r_max2:
                ray_per_offset = n / (t * step)  # rays (fractional index) per minor offset
                j_max = min(t - (1 if strict else 0), int(math.sqrt(r_max2 - dt2) / d_minor))
                j = -j_max + (j_phase + j_max) % step  # first lattice offset >= -j_max
                while j <= j_max:
                    dist2 = (j * d_minor) ** 2 + dt2
                    r = n + t * ar + j * br
                    c = n + t * ac + j * bc
                    z = win[r, c]
                    if z == z:
                        # horizon interpolated between the two rays bracketing the cell
                        ray = j * ray_per_offset + n // step
                        k = min(int(ray), n_rays - 2)
                        horizon = state[k] + (ray - k) * (state[k + 1] - state[k])
                        rise = z - dist2 * inv_2kr + rx_h - z_tx
                        visible = rise >= horizon * math.sqrt(dist2)
                        ii = int((r - phase_r) * inv_step + 0.5)
                        jj = int((c - phase_c) * inv_step + 0.5)
                        out[ii, jj] = LOS_VISIBLE if visible else LOS_HIDDEN
                    j += step
            tf = float(t)
            drop = tf * tf * inv_2kr
            inv_t = 1.0 / tf
            for i in range(n_rays):
                x = slope[i] * tf
                j0 = math.floor(x)
                z = _sample(win, n, t, ar, ac, br, bc, j0, x - j0)
                s = (z - drop * seg2[i] - z_tx) * inv_seg[i] * inv_t
                state[i] = max(state[i], s) if z == z else _FAR  # no data: blocked


@njit(**_INLINE)
def _hull_push(hd, hz, m, d, z):
    """Append (d, z) to the upper hull hd/hz[:m] (d increasing); return the new size."""
    while m >= 2:
        x1 = hd[m - 1] - hd[m - 2]
        y1 = hz[m - 1] - hz[m - 2]
        if x1 * (z - hz[m - 2]) - y1 * (d - hd[m - 2]) >= 0.0:
            m -= 1
        else:
            break
    hd[m] = d
    hz[m] = z
    return m + 1


@njit(**_INLINE)
def _best_edge(hd, hz, lo, hi, d0, z0, d1, z1):
    """Hull vertex in lo..hi-1, strictly between d0 and d1, with the largest v on that path.

    Returns (index, v sqrt(lambda)); index -1 and -inf when there is none. Scores
    h|h| / (a b) are compared as fractions, without division.
    """
    num = -1.0
    den = 0.0
    p = -1
    length = d1 - d0
    slope = (z1 - z0) / length
    for i in range(lo, hi):
        a = hd[i] - d0
        if a >= length:
            break
        h = hz[i] - z0 - slope * a
        ab = a * (length - a)
        if p < 0 or h * abs(h) * den > num * ab:
            num = h * abs(h)
            den = ab
            p = i
    if p < 0:
        return -1, -math.inf
    x = 2.0 * length * num / den
    return p, math.copysign(math.sqrt(abs(x)), x)


@njit(**_JIT)
def deygout_sweep(
    win, n, step, phase_r, phase_c, d_row, d_col, z_tx, rx_h, inv_2kr, r_max, freqs, out
):
    """Free-space + Deygout (3 edges) loss from the site to every lattice cell of the window.

    Parameters are those of `los_sweep`, plus `freqs` (float64[nf], MHz) and
    `out` (float32[nf, nI, nJ], loss in dB, pre-filled with NaN).
    """
    nf = freqs.shape[0]
    inv_sqrt_lambda = np.empty(nf)
    fspl_1m = np.empty(nf)  # free-space loss at 1 m
    for f in range(nf):
        inv_sqrt_lambda[f] = 1.0 / math.sqrt(SPEED_OF_LIGHT_M_S / (freqs[f] * 1e6))
        fspl_1m[f] = free_space_loss_db(1.0, freqs[f])
    hd = np.empty(n + 1)  # hull vertices: distance from the site
    hz = np.empty(n + 1)  # hull vertices: curvature-corrected elevation
    left = np.empty(n + 1)  # v sqrt(lambda) of the left sub-edge of each vertex; NaN = unknown
    inv_step = 1.0 / step
    r_max2 = r_max * r_max
    if (n - phase_r) % step == 0 and (n - phase_c) % step == 0 and win[n, n] == win[n, n]:
        d3 = max(abs(z_tx - win[n, n] - rx_h), 1.0)
        for f in range(nf):
            out[f, (n - phase_r) // step, (n - phase_c) // step] = free_space_loss_db(d3, freqs[f])
    for cone in range(4):
        ar, ac, br, bc, d_major, d_minor, strict, t_phase, j_phase = _cone(
            cone, n, step, phase_r, phase_c, d_row, d_col
        )
        t_last = min(n, int(r_max / d_major))
        ns = n * step
        j_start = j_phase - step if 2 * j_phase > step else j_phase
        for k in range(-n, n + 1, step):
            seg = math.sqrt(d_major * d_major + (k / n * d_minor) ** 2)
            m = 0
            # Exact integer tracking of the ray position k t / n: sample cell
            # j0 = floor(k t / n) with rem = k t - n j0 in [0, n); nearest lattice
            # offset j with e = k t - n j, 2e in (-ns, ns]; the ray is the nearest
            # one to (t, j), and evaluates it, when 2e in (-t step, t step].
            j0 = 0
            rem = 0
            j = j_start
            e = -n * j_start
            t_mod = (1 - t_phase) % step
            for t in range(1, t_last + 1):
                rem += k
                carry = int(rem >= n) - int(rem < 0)
                j0 += carry
                rem -= carry * n
                e += k
                carry = int(2 * e > ns) - int(2 * e <= -ns)
                j += carry * step
                e -= carry * ns
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
                        d_rx = math.sqrt(dist2)
                        z_rx = z_cell - dist2 * inv_2kr + rx_h
                        p, g_main = _best_edge(hd, hz, 0, m, 0.0, z_tx, d_rx, z_rx)
                        g_right = -math.inf
                        if p >= 0:
                            if left[p] != left[p]:
                                left[p] = _best_edge(hd, hz, 0, p, 0.0, z_tx, hd[p], hz[p])[1]
                            g_right = _best_edge(hd, hz, p + 1, m, hd[p], hz[p], d_rx, z_rx)[1]
                        log_d3 = 10.0 * math.log10(max(dist2 + (z_tx - z_rx) ** 2, 1.0))
                        ii = int((r - phase_r) * inv_step + 0.5)
                        jj = int((c - phase_c) * inv_step + 0.5)
                        for f in range(nf):
                            loss = fspl_1m[f] + log_d3
                            j_main = knife_edge_loss_db(g_main * inv_sqrt_lambda[f])
                            if j_main > 0.0:
                                loss += (
                                    j_main
                                    + knife_edge_loss_db(left[p] * inv_sqrt_lambda[f])
                                    + knife_edge_loss_db(g_right * inv_sqrt_lambda[f])
                                )
                            out[f, ii, jj] = loss
                t_mod += 1
                if t_mod == step:
                    t_mod = 0
                z = _sample(win, n, t, ar, ac, br, bc, j0, rem / n)
                if z != z:
                    break
                ds = t * seg
                m = _hull_push(hd, hz, m, ds, z - ds * ds * inv_2kr)
                left[m - 1] = math.nan


@njit(**_JIT)
def empirical_sweep(
    win,
    n,
    step,
    phase_r,
    phase_c,
    d_row,
    d_col,
    r_max,
    los,
    use_rma,
    freqs,
    h_bs,
    rx_h,
    rma_h,
    rma_w,
    hata_c,
    out,
):
    """RMa (LOS/NLOS from `los`, the `los_sweep` output) or COST-231 Hata loss on the lattice.

    Parameters as in `deygout_sweep`; `use_rma` selects RMa, else Hata.
    """
    r_max2 = r_max * r_max
    for ii in range(out.shape[1]):
        r = phase_r + ii * step
        dy = (r - n) * d_row
        for jj in range(out.shape[2]):
            c = phase_c + jj * step
            dx = (c - n) * d_col
            dist2 = dx * dx + dy * dy
            if dist2 > r_max2 or win[r, c] != win[r, c]:
                continue
            d = math.sqrt(dist2)
            for f in range(freqs.shape[0]):
                if use_rma:
                    visible = los[ii, jj] == LOS_VISIBLE
                    out[f, ii, jj] = rma_path_loss_db(
                        d, freqs[f], h_bs, rx_h, visible, rma_h, rma_w
                    )
                else:
                    out[f, ii, jj] = cost231_hata_db(d, freqs[f], h_bs, rx_h, hata_c)


@njit(**_JIT)
def accumulate(
    loss,
    loss_r0,
    loss_c0,
    elev,
    reg_r0,
    reg_c0,
    best_rsrp,
    best_idx,
    sum_mw,
    gx0,
    gdx,
    gy0,
    gdy,
    site_x,
    site_y,
    z_tx,
    rx_h,
    inv_2kr,
    sec_loss_f,
    sec_slot,
    sec_index,
    sec_az,
    sec_mtilt,
    sec_etilt,
    sec_hbw,
    sec_vbw,
    sec_gain,
    sec_pre,
    front_to_back_db,
    side_lobe_v_db,
    rx_gain_db,
):
    """Add the sectors of one site to a region of the mosaic.

    Parameters
    ----------
    loss : float32[nf, h, w]
        Site path loss on the analysis grid, [:, 0, 0] at grid cell (loss_r0, loss_c0).
    elev : float[H, W]
        Ground elevation on the whole analysis grid.
    reg_r0, reg_c0 : int
        Grid cell of the region's [0, 0].
    best_rsrp, best_idx, sum_mw : arrays over the region
        Strongest RSRP (dBm) and its sector index so far; received power per
        RE summed per frequency slot (mW), shape (slots, rows, cols).
    gx0, gdx, gy0, gdy : float
        Cell-centre x of column 0 and step, y of row 0 and step (negative).
    site_x, site_y, z_tx : float
        Antenna position and absolute elevation.
    rx_h, inv_2kr : float
        Receiver height; 1 / (2 k R).
    sec_* : arrays over the site's sectors
        Loss frequency index, frequency slot, global sector index, azimuth,
        mechanical and electrical tilt, beamwidths, gain (dBi), power per RE (dBm).
    front_to_back_db, side_lobe_v_db : float
        Pattern floors, dB.
    rx_gain_db : float
        Receiver antenna gain minus the clutter margin, dB.
    """
    rows, cols = best_rsrp.shape
    i_lo = max(reg_r0, loss_r0)
    i_hi = min(reg_r0 + rows, loss_r0 + loss.shape[1])
    j_lo = max(reg_c0, loss_c0)
    j_hi = min(reg_c0 + cols, loss_c0 + loss.shape[2])
    for i in range(i_lo, i_hi):
        y = gy0 + i * gdy
        for j in range(j_lo, j_hi):
            if loss[0, i - loss_r0, j - loss_c0] != loss[0, i - loss_r0, j - loss_c0]:
                continue
            x = gx0 + j * gdx
            east = x - site_x
            north = y - site_y
            d2 = east * east + north * north
            bearing = math.degrees(math.atan2(east, north))
            depression = math.degrees(
                math.atan2(z_tx - elev[i, j] - rx_h + d2 * inv_2kr, math.sqrt(d2))
            )
            for q in range(sec_az.shape[0]):
                gain = sector_gain_dbi(
                    bearing,
                    depression,
                    sec_az[q],
                    sec_mtilt[q],
                    sec_etilt[q],
                    sec_hbw[q],
                    sec_vbw[q],
                    sec_gain[q],
                    front_to_back_db,
                    side_lobe_v_db,
                )
                rsrp = (
                    sec_pre[q] + gain - loss[sec_loss_f[q], i - loss_r0, j - loss_c0] + rx_gain_db
                )
                sum_mw[sec_slot[q], i - reg_r0, j - reg_c0] += 10.0 ** (rsrp / 10.0)
                if rsrp > best_rsrp[i - reg_r0, j - reg_c0]:
                    best_rsrp[i - reg_r0, j - reg_c0] = rsrp
                    best_idx[i - reg_r0, j - reg_c0] = sec_index[q]
