"""Compiled kernels of the radio engine (private; use `registry.radio.coverage`).

The radial sweep
================
A site sits at the centre cell of a square window of (2n + 1)² DEM cells.
The window is cut into four cones (down, up, right, left); in each cone one
axis is "major" (a row index t = 1..n outward) and the other "minor". Rays
run from the site to the positions k = -n..n on the far edge of the cone
(every `step`-th position on a coarser analysis grid). Walking a ray outward
one major row at a time, the terrain is sampled where the ray crosses the row,
by linear interpolation between the two straddling cells (on a grid line this
is exactly bilinear interpolation), and corrected for earth curvature by
subtracting d² / (2 k R) (equivalent to adding the bulge d1 d2 / (2 k R) of
the path to each receiver).

Each analysis cell is evaluated once, by the ray that passes nearest to its
centre at its row (at most half a ray spacing away), using the samples of
that ray before its row: the receiver is the cell centre itself (its own
elevation + receiver height, its own distance).

State carried along a ray, updated in O(1) amortised per sample:

* line of sight: the running maximum elevation slope seen from the site;
* Deygout: the upper convex hull of the (distance, height) samples, kept by
  the monotone-chain rule (pop while the last point is not above the chord).

Why the hull is enough for Deygout: the set {v > c} for c > 0 is the region
above the concave curve h = c sqrt(lambda d1 d2 / 2 d), so a point under a
chord between two hull vertices cannot have a larger positive v than both
of them. Hence on obstructed paths (v_main > 0) the main edge, and each
sub-path edge with v > 0, is a hull vertex, and the hull of a prefix/suffix
ending at a hull vertex is the part of the full hull on that side. The
sweep therefore reproduces the exact 3-edge Deygout on the ray's own samples
whenever edges are obstructing; only edges with v <= 0 (Fresnel-zone
clearance losses, at most 6 dB each) may be picked from the hull instead of
the best non-hull point. The remaining difference to a per-cell exact
profile is geometric: the profile is that of the nearest ray, not of the
straight line to the cell centre.

Kernels are compiled with fastmath flags that keep NaN semantics (NaN marks
missing terrain: a ray stops at the first NaN sample and cells beyond stay NaN).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from registry.radio.antenna import antenna_pattern_db, sector_gain_dbi
from registry.radio.diffraction import knife_edge_loss_db
from registry.radio.pathloss import (
    SPEED_OF_LIGHT_M_S,
    cost231_hata_db,
    free_space_loss_db,
    rma_path_loss_db,
)

MODE_LOS = 0
MODE_DEYGOUT = 1
MODE_RMA = 2
MODE_HATA = 3

# No "nnan"/"ninf": NaN marks missing terrain and must survive optimisation.
_FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
_JIT = {"cache": True, "nogil": True, "fastmath": _FASTMATH, "error_model": "numpy"}
_INLINE = {**_JIT, "inline": "always"}  # helpers of the hot loop: no call, no refcounting

_fspl = njit(**_JIT)(free_space_loss_db)
_knife = njit(**_JIT)(knife_edge_loss_db)
_rma = njit(**_JIT)(rma_path_loss_db)
_hata = njit(**_JIT)(cost231_hata_db)
_pattern = njit(**_JIT)(antenna_pattern_db)
_sector_gain = njit(**_JIT)(sector_gain_dbi)


@njit(**_INLINE)
def _hull_push(hd: np.ndarray, hz: np.ndarray, m: int, d: float, z: float) -> int:
    """Append (d, z) to the upper hull hd/hz[:m] (d increasing); return the new size."""
    while m >= 2:
        x1 = hd[m - 1] - hd[m - 2]
        y1 = hz[m - 1] - hz[m - 2]
        x2 = d - hd[m - 2]
        y2 = z - hz[m - 2]
        if x1 * y2 - y1 * x2 >= 0.0:
            m -= 1
        else:
            break
    hd[m] = d
    hz[m] = z
    return m + 1


@njit(**_JIT)
def _signed_sqrt(x: float) -> float:
    return math.copysign(math.sqrt(abs(x)), x)


@njit(**_INLINE)
def _deygout_geometry(
    hd: np.ndarray, hz: np.ndarray, m: int, z_tx: float, d_rx: float, z_rx: float
) -> tuple[float, float, float]:
    """Deygout edges over hull vertices: v * sqrt(lambda) of main, left and right edges.

    -inf where an edge does not exist; v for a wavelength is the value / sqrt(lambda).
    """
    best = -math.inf
    p = -1
    slope = (z_rx - z_tx) / d_rx
    for i in range(m):
        d1 = hd[i]
        if d1 >= d_rx:
            break
        h = hz[i] - z_tx - slope * d1
        score = h * abs(h) / (d1 * (d_rx - d1))
        if score > best:
            best = score
            p = i
    if p < 0:
        return -math.inf, -math.inf, -math.inf
    g_main = _signed_sqrt(2.0 * d_rx * best)
    dp = hd[p]
    zp = hz[p]
    g_left = -math.inf
    if p > 0:
        slope = (zp - z_tx) / dp
        best = -math.inf
        for i in range(p):
            d1 = hd[i]
            h = hz[i] - z_tx - slope * d1
            best = max(best, h * abs(h) / (d1 * (dp - d1)))
        g_left = _signed_sqrt(2.0 * dp * best)
    g_right = -math.inf
    dd = d_rx - dp
    slope = (z_rx - zp) / dd
    best = -math.inf
    for i in range(p + 1, m):
        if hd[i] >= d_rx:
            break
        d1 = hd[i] - dp
        h = hz[i] - zp - slope * d1
        best = max(best, h * abs(h) / (d1 * (dd - d1)))
    if best > -math.inf:
        g_right = _signed_sqrt(2.0 * dd * best)
    return g_main, g_left, g_right


@njit(**_INLINE)
def _emit(
    out, ii, jj, mode, freqs, inv_sqrt_lambda, hd, hz, m, max_slope,
    z_tx, d_rx, z_rx, h_bs, rx_h, rma_h, rma_w, hata_c,
):  # fmt: skip
    """Write the value(s) of one receiver cell from the state of its ray."""
    if mode == MODE_LOS or mode == MODE_RMA:
        visible = d_rx == 0.0 or (z_rx - z_tx) / d_rx >= max_slope
        if mode == MODE_LOS:
            out[0, ii, jj] = 1.0 if visible else 0.0
        else:
            for f in range(freqs.shape[0]):
                out[f, ii, jj] = _rma(d_rx, freqs[f], h_bs, rx_h, visible, rma_h, rma_w)
    elif mode == MODE_HATA:
        for f in range(freqs.shape[0]):
            out[f, ii, jj] = _hata(d_rx, freqs[f], h_bs, rx_h, hata_c)
    else:
        d3 = max(math.sqrt(d_rx * d_rx + (z_tx - z_rx) ** 2), 1.0)
        g_main, g_left, g_right = _deygout_geometry(hd, hz, m, z_tx, d_rx, z_rx)
        for f in range(freqs.shape[0]):
            loss = _fspl(d3, freqs[f])
            j_main = _knife(g_main * inv_sqrt_lambda[f])
            if j_main > 0.0:
                loss += (j_main + _knife(g_left * inv_sqrt_lambda[f])
                         + _knife(g_right * inv_sqrt_lambda[f]))  # fmt: skip
            out[f, ii, jj] = loss


@njit(**_JIT)
def sweep(
    win, n, step, phase_r, phase_c, d_row, d_col, z_tx, rx_h, inv_2kr, r_max,
    mode, freqs, h_bs, rma_h, rma_w, hata_c, out,
):  # fmt: skip
    """Radial sweep of one site over its window; fills `out` (see module docstring).

    Parameters
    ----------
    win : float32[2n+1, 2n+1]
        Terrain window, site at [n, n], NaN = no data.
    n, step : int
        Window half-width (a multiple of step) and analysis step (odd).
    phase_r, phase_c : int
        First window row/column on the analysis lattice.
    d_row, d_col : float
        Cell size along rows (y) and columns (x), metres.
    z_tx : float
        Absolute transmitter antenna elevation, metres.
    rx_h : float
        Receiver height above ground, metres.
    inv_2kr : float
        1 / (2 k R), 1/metres.
    r_max : float
        Radius, metres.
    mode : int
        MODE_LOS, MODE_DEYGOUT, MODE_RMA or MODE_HATA.
    freqs : float64[nf]
        Frequencies, MHz.
    h_bs, rma_h, rma_w, hata_c : float
        Antenna height above ground, RMa h and W, Hata C.
    out : float32[nf, nI, nJ]
        Output on the analysis lattice, pre-filled with NaN.
    """
    nf = freqs.shape[0]
    inv_sqrt_lambda = np.empty(nf)
    for f in range(nf):
        inv_sqrt_lambda[f] = 1.0 / math.sqrt(SPEED_OF_LIGHT_M_S / (freqs[f] * 1e6))
    hd = np.empty(n + 1)
    hz = np.empty(n + 1)
    r_max2 = r_max * r_max
    if (n - phase_r) % step == 0 and (n - phase_c) % step == 0 and win[n, n] == win[n, n]:
        _emit(out, (n - phase_r) // step, (n - phase_c) // step, mode, freqs, inv_sqrt_lambda,
              hd, hz, 0, -math.inf, z_tx, 0.0, win[n, n] + rx_h, h_bs, rx_h, rma_h, rma_w,
              hata_c)  # fmt: skip
    for cone in range(4):
        if cone == 0:
            ar, ac, br, bc, d_major, d_minor = 1, 0, 0, 1, d_row, d_col
        elif cone == 1:
            ar, ac, br, bc, d_major, d_minor = -1, 0, 0, 1, d_row, d_col
        elif cone == 2:
            ar, ac, br, bc, d_major, d_minor = 0, 1, 1, 0, d_col, d_row
        else:
            ar, ac, br, bc, d_major, d_minor = 0, -1, 1, 0, d_col, d_row
        strict = cone >= 2  # diagonal cells belong to the up/down cones
        if ar != 0:
            t_phase = (ar * (phase_r - n)) % step
            j_phase = (phase_c - n) % step
        else:
            t_phase = (ac * (phase_c - n)) % step
            j_phase = (phase_r - n) % step
        t_last = min(n, int(r_max / d_major))
        ns = n * step
        inv_n = 1.0 / n
        inv_step = 1.0 / step  # row/column to lattice index without integer division
        j_start = j_phase - step if 2 * j_phase > step else j_phase
        for k in range(-n, n + 1, step):
            seg = math.sqrt(d_major * d_major + (k * inv_n * d_minor) ** 2)
            m = 0
            max_slope = -math.inf
            # Exact integer tracking of the ray position k t / n:
            # sample cell j0 = floor(k t / n) with remainder rem = k t - n j0 in [0, n);
            # nearest lattice cell j with residual e = k t - n j, 2e in (-ns, ns].
            j0 = 0
            rem = 0
            j = j_start
            e = -n * j_start
            t_mod = (1 - t_phase) % step
            for t in range(1, t_last + 1):
                rem += k
                if rem >= n:
                    rem -= n
                    j0 += 1
                elif rem < 0:
                    rem += n
                    j0 -= 1
                e += k
                if 2 * e > ns:
                    e -= ns
                    j += step
                elif 2 * e <= -ns:
                    e += ns
                    j -= step
                # evaluate the receiver cell this ray owns at row t, if any
                if t_mod == 0 and -t * step < 2 * e <= t * step:
                    aj = abs(j)
                    if aj < t or (aj == t and not strict):
                        dist2 = (j * d_minor) ** 2 + (t * d_major) ** 2
                        r = n + t * ar + j * br
                        c = n + t * ac + j * bc
                        z_cell = win[r, c]
                        if dist2 <= r_max2 and z_cell == z_cell:
                            _emit(out, int((r - phase_r) * inv_step + 0.5),
                                  int((c - phase_c) * inv_step + 0.5), mode, freqs,
                                  inv_sqrt_lambda, hd, hz, m, max_slope, z_tx, math.sqrt(dist2),
                                  z_cell - dist2 * inv_2kr + rx_h, h_bs, rx_h, rma_h, rma_w,
                                  hata_c)  # fmt: skip
                t_mod += 1
                if t_mod == step:
                    t_mod = 0
                if mode == MODE_HATA:
                    continue
                # sample the terrain where the ray crosses row t
                r = n + t * ar + j0 * br
                c = n + t * ac + j0 * bc
                z = win[r, c]
                if rem > 0:
                    z += rem * inv_n * (win[r + br, c + bc] - z)
                if z != z:
                    break
                ds = t * seg
                zc = z - ds * ds * inv_2kr
                if mode == MODE_DEYGOUT:
                    m = _hull_push(hd, hz, m, ds, zc)
                else:
                    max_slope = max(max_slope, (zc - z_tx) / ds)
