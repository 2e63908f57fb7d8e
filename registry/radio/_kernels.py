"""Compiled kernels of the radio engine (private; use `registry.radio.coverage`).

Line of sight (`los_grid`)
==========================
The scheme of GDAL's viewshed (`gdal_viewshed`, edge mode): rows are walked
outward from the observer row, each row outward from the observer column,
and every cell takes its horizon from its two neighbours nearer the
observer, the ones its line to the observer passes between. State per cell:
the horizon as a rise per step along the cell's major axis (the larger of
its row and column offsets), the largest of the interpolated horizon and
the cell's own terrain. With major offset t and minor offset x the
neighbours are at major offset t - 1 (for |x| < t the cells (t - 1, x) and
(t - 1, x - 1) of the previous row, the inner loops over a row vectorise; for
|x| > t the cells (t, x - 1) of the same row and (t - 1, x - 1)), weighted
1 - x/t and x/t. A cell is visible when its centre, raised by the target
height, is not below that horizon. Terrain is lowered by d² / (2 k R) for
earth curvature. One pass, O(1) per cell, row-contiguous memory, float32.
Like GDAL's, it is an approximation of the exact per-cell line of sight
(the horizon is interpolated, not traced); on the benchmark DEM it agrees
with `gdal.ViewshedGenerate` on 99.9998 % of the cells within the radius.
No-data cells are hidden and block everything behind them.

The radial sweep (Deygout)
==========================
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

Receivers. Cell (t, j) is evaluated from the samples at rows 1..t-1 of the
nearest ray at its row, k = step * floor((2 j n + t step) / (2 t step)) in
exact integers: at most half a ray spacing (half a cell on the DEM grid)
from the cell centre; the receiver is the cell centre (its own elevation +
receiver height, its own distance). Each ray keeps the upper convex hull of
its (distance, height) samples by the monotone-chain rule, O(1) amortised
per sample.

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
J(v) is read from a table (step 1/16 in v, linear interpolation, within
0.0016 dB of the formula; the formula beyond v = 128).

Cost. A ray stops at the last row where it can still own a cell within the
radius (its cells are at most half a ray spacing from it). While walking, a
ray's cells only record their edges' v|v| lambda (the hull searches score
all candidate vertices in one branch-free, vectorised loop, then pick the
first largest); the square roots, 10 log10 of the path length (a bit-level
series, within 1e-10 dB of the library's) and the J(v) table reads follow in
loops over the ray's cells without branches, independent from cell to cell.
The results are those of the plain per-cell evaluation.

Point losses (`deygout_point_losses`)
=====================================
For a few receivers (siting's demand points) a whole window is wasted work, but
they must get the map's value. Each receiver's owning ray (`ray_profile`, the
rule above) is walked alone up to its row, through the same hull and edge search
as the sweep: the sweep's value at O(distance) per receiver.

The scalar model functions (path loss, J(v), antenna pattern) are the public
ones, made callable from compiled code by `numba.extending.register_jitable`.

Kernels are compiled with fastmath flags that keep NaN semantics: NaN marks
missing terrain. A ray is cut at its first NaN sample: cells beyond it get
no value (NaN) in `deygout_sweep`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import njit, types
from numba.core.typing.templates import Signature
from numba.extending import intrinsic

from registry.radio.antenna import tilted_gain_dbi, view_angles, wrap_deg
from registry.radio.diffraction import KNIFE_EDGE_V_MIN, knife_edge_loss_db
from registry.radio.pathloss import (
    SPEED_OF_LIGHT_M_S,
    cost231_hata_db,
    free_space_loss_db,
    rma_path_loss_db,
)

DB_TO_NEPER_10 = math.log(10.0) / 10.0  # 10^(x / 10) = exp(x ln(10) / 10): an exp, not a pow
_FAR = 1e30  # finite float32 stand-in for an infinite slope (keeps interpolation NaN-free)

# No "nnan"/"ninf": NaN marks missing terrain and must survive optimisation.
_FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
_jit = njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
_inline = njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy", inline="always")

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

# J(v) tabulated for v = -0.78 + i / 16 up to v = 128, linearly interpolated
# (largest deviation from the formula 0.0016 dB, measured on 10^6 points);
# the formula itself beyond the table.
_J_STEP = 1.0 / 16.0
_J_TABLE = np.array(
    [knife_edge_loss_db(KNIFE_EDGE_V_MIN + i * _J_STEP) for i in range(2062)], dtype=np.float64
)
_J_TABLE[0] = 6.9 + 20.0 * math.log10(math.sqrt(0.88**2 + 1.0) - 0.88)  # the limit at v -> -0.78+


@_inline
def _cone(
    cone: int, n: int, step: int, phase_r: int, phase_c: int, d_row: float, d_col: float
) -> tuple[int, int, int, int, float, float, bool, int, int]:
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


@_inline
def _sample(
    win: F32, n: int, t: int, ar: int, ac: int, br: int, bc: int, j0: int, frac: float
) -> float:
    """Terrain where a ray crosses row t at j0 + frac (0 <= frac < 1)."""
    r = n + t * ar + j0 * br
    c = n + t * ac + j0 * bc
    z0 = win[r, c]
    j1 = min(j0 + 1, n)
    z1 = win[n + t * ar + j1 * br, n + t * ac + j1 * bc]
    return z0 + frac * (z1 - z0) if frac > 0.0 else z0


@_inline
def _offset_max(t: int, d_row: float, d_col: float, r_max2: float, limit: int) -> int:
    """Largest column offset x <= limit with (x d_col)² + (t d_row)² <= r_max²; -1 if none."""
    rest = r_max2 - (t * d_row) ** 2
    if rest < 0.0:
        return -1
    x = min(int(math.sqrt(rest) / d_col), limit)
    while x >= 0 and (x * d_col) ** 2 > rest:
        x -= 1
    while x < limit and ((x + 1) * d_col) ** 2 <= rest:
        x += 1
    return x


@_inline
def _los_cell(
    zr: F32,
    o: Bools,
    state: F32,
    c: int,
    out_c0: int,
    offset: float,
    h_rx: np.float32,
    inv_major: float,
    horizon: float,
    far: np.float32,
) -> None:
    """Visibility of cell c of a row from its interpolated horizon; store its own horizon."""
    z = zr[c]
    rise = z + offset
    o[c - out_c0] = (rise + h_rx) * inv_major >= horizon
    state[c] = max(horizon, rise * inv_major) if z == z else far


@_jit
def los_grid(
    elev: F32,
    r0: int,
    c0: int,
    d_row: float,
    d_col: float,
    z_tx: float,
    rx_h: float,
    inv_2kr: float,
    r_max: float,
    out: Bools,
    out_r0: int,
    out_c0: int,
) -> None:
    """Line of sight from cell [r0, c0] to every cell of `elev` within the radius.

    Parameters
    ----------
    elev : float32[rows, cols]
        Terrain, NaN = no data (C-contiguous).
    r0, c0 : int
        Observer cell.
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
    out : bool[h, w]
        Set True where visible, False where hidden or without terrain, for
        the cells within the radius; ``out[0, 0]`` is cell (out_r0, out_c0).
        Cells beyond the radius are left as they are.
    out_r0, out_c0 : int
        Cell of ``out[0, 0]``.
    """
    rows, cols = elev.shape
    r_max2 = r_max * r_max
    size = max(rows, cols) + 1
    inv = np.empty(size, np.float32)  # 1 / major offset
    inv[0] = 0.0
    for i in range(1, size):
        inv[i] = 1.0 / i
    base = np.empty(cols, np.float32)  # - observer elevation - curvature drop of the column offset
    for c in range(cols):
        base[c] = -(((c - c0) * d_col) ** 2) * inv_2kr - z_tx
    h_rx = np.float32(rx_h)
    far = np.float32(_FAR)
    first = np.empty(cols, np.float32)  # horizon state of the observer row
    prev = np.empty(cols, np.float32)
    cur = np.empty(cols, np.float32)
    # observer row: outward along the row, from the straight neighbour only
    x_hi = _offset_max(0, d_row, d_col, r_max2, cols - 1 - c0)
    x_lo = _offset_max(0, d_row, d_col, r_max2, c0)
    out[r0 - out_r0, c0 - out_c0] = elev[r0, c0] == elev[r0, c0]
    first[c0] = -far
    zr = elev[r0]
    o = out[r0 - out_r0]
    for c in range(c0 + 1, c0 + x_hi + 1):
        _los_cell(zr, o, first, c, out_c0, base[c], h_rx, inv[c - c0], first[c - 1], far)
    for c in range(c0 - 1, c0 - x_lo - 1, -1):
        _los_cell(zr, o, first, c, out_c0, base[c], h_rx, inv[c0 - c], first[c + 1], far)
    for sign in (1, -1):
        prev[:] = first
        for t in range(1, (rows - 1 - r0 if sign > 0 else r0) + 1):
            x_hi = _offset_max(t, d_row, d_col, r_max2, cols - 1 - c0)
            if x_hi < 0:
                break
            x_lo = _offset_max(t, d_row, d_col, r_max2, c0)
            r = r0 + sign * t
            zr = elev[r]
            o = out[r - out_r0]
            drop = np.float32(-((t * d_row) ** 2) * inv_2kr)
            inv_t = inv[t]
            # cells nearer the column axis (|x| < t): previous row only, vectorised
            for c in range(c0 + 1, c0 + min(x_hi, t - 1) + 1):
                h = prev[c] + (c - c0) * inv_t * (prev[c - 1] - prev[c])
                _los_cell(zr, o, cur, c, out_c0, base[c] + drop, h_rx, inv_t, h, far)
            for c in range(c0 - min(x_lo, t - 1), c0):
                h = prev[c] + (c0 - c) * inv_t * (prev[c + 1] - prev[c])
                _los_cell(zr, o, cur, c, out_c0, base[c] + drop, h_rx, inv_t, h, far)
            _los_cell(zr, o, cur, c0, out_c0, base[c0] + drop, h_rx, inv_t, prev[c0], far)
            # diagonal, then the cells nearer the row axis (|x| > t): outward along the row
            if x_hi >= t:
                c = c0 + t
                _los_cell(zr, o, cur, c, out_c0, base[c] + drop, h_rx, inv_t, prev[c - 1], far)
            for c in range(c0 + t + 1, c0 + x_hi + 1):
                s = inv[c - c0]
                h = cur[c - 1] + t * s * (prev[c - 1] - cur[c - 1])
                _los_cell(zr, o, cur, c, out_c0, base[c] + drop, h_rx, s, h, far)
            if x_lo >= t:
                c = c0 - t
                _los_cell(zr, o, cur, c, out_c0, base[c] + drop, h_rx, inv_t, prev[c + 1], far)
            for c in range(c0 - t - 1, c0 - x_lo - 1, -1):
                s = inv[c0 - c]
                h = cur[c + 1] + t * s * (prev[c + 1] - cur[c + 1])
                _los_cell(zr, o, cur, c, out_c0, base[c] + drop, h_rx, s, h, far)
            prev, cur = cur, prev


@_inline
def _knife_edge_fast(v: float) -> float:
    """J(v) by the table (within 0.0016 dB of `knife_edge_loss_db`; 0 for v <= -0.78)."""
    if v <= KNIFE_EDGE_V_MIN:
        return 0.0
    x = (v - KNIFE_EDGE_V_MIN) * (1.0 / _J_STEP)
    if x >= _J_TABLE.shape[0] - 1:
        return knife_edge_loss_db(v)
    i = int(x)
    return _J_TABLE[i] + (x - i) * (_J_TABLE[i + 1] - _J_TABLE[i])


@_inline
def _turns_down(hd: F64, hz: F64, i: int, d: float, z: float) -> bool:
    """Whether vertex i + 1 of the hull is not above the line from vertex i to (d, z)."""
    x1 = hd[i + 1] - hd[i]
    y1 = hz[i + 1] - hz[i]
    return x1 * (z - hz[i]) - y1 * (d - hd[i]) >= 0.0


_J_V_END = KNIFE_EDGE_V_MIN + (_J_TABLE.shape[0] - 1) * _J_STEP  # v where the table ends


@_inline
def _knife_edge_table(v: float) -> float:
    """`_knife_edge_fast` for v < _J_V_END, without branches (vectorises); wrong beyond."""
    x = min(max((v - KNIFE_EDGE_V_MIN) * (1.0 / _J_STEP), 0.0), _J_TABLE.shape[0] - 1.0)
    i = min(int(x), _J_TABLE.shape[0] - 2)
    j = _J_TABLE[i] + (x - i) * (_J_TABLE[i + 1] - _J_TABLE[i])
    return j if v > KNIFE_EDGE_V_MIN else 0.0


@_inline
def _hull_push(hd: F64, hz: F64, m: int, d: float, z: float) -> int:
    """Append (d, z) to the upper hull hd/hz[:m] (d increasing); return the new size.

    The first two pop tests are evaluated without branches (whether a sample pops
    vertices is unpredictable); further pops, rarer, by the loop.
    """
    pop1 = m >= 2 and _turns_down(hd, hz, max(m - 2, 0), d, z)
    pop2 = m >= 3 and _turns_down(hd, hz, max(m - 3, 0), d, z)
    m -= int(pop1) + int(pop1 & pop2)
    if pop1 & pop2:
        while m >= 2 and _turns_down(hd, hz, m - 2, d, z):
            m -= 1
    hd[m] = d
    hz[m] = z
    return m + 1


@_inline
def _best_edge(
    hd: F64,
    hz: F64,
    lo: int,
    hi: int,
    d0: float,
    z0: float,
    d1: float,
    z1: float,
    sc: F64,
) -> tuple[int, float]:
    """Hull vertex in lo..hi-1, strictly between d0 and d1, with the largest v on that path.

    Returns (index, v|v| lambda); index -1 and -inf when there is none (v sqrt(lambda)
    is `_signed_sqrt` of it). The scores h|h| / (a b) are computed first (a loop
    without branches, vectorised) into the scratch array sc, then the first largest
    is picked.
    """
    length = d1 - d0
    slope = (z1 - z0) / length
    while hi > lo and hd[hi - 1] - d0 >= length:
        hi -= 1
    for i in range(lo, hi):
        a = hd[i] - d0
        h = hz[i] - z0 - slope * a
        sc[i] = h * abs(h) / (a * (length - a))
    best = -math.inf
    p = -1
    for i in range(lo, hi):
        better = sc[i] > best
        best = sc[i] if better else best
        p = i if better else p
    return p, 2.0 * length * best


@_inline
def _deygout_edges(
    hd: F64,
    hz: F64,
    m: int,
    left: F64,
    z_tx: float,
    d_rx: float,
    z_rx: float,
    sc: F64,
) -> tuple[float, float, float]:
    """Deygout's three edges for a receiver at (d_rx, z_rx) behind the hull hd/hz[:m].

    Returns v|v| lambda of the main and of the right edge and v sqrt(lambda) of the
    left one (0 and -inf without a main edge). `left[p]` caches the left edge of
    vertex p (NaN = not yet known): it depends only on the vertices before p, which
    stay while p is on the hull.
    """
    p, x_main = _best_edge(hd, hz, 0, m, 0.0, z_tx, d_rx, z_rx, sc)
    if p < 0:
        return x_main, 0.0, -math.inf
    if left[p] != left[p]:
        left[p] = _signed_sqrt(_best_edge(hd, hz, 0, p, 0.0, z_tx, hd[p], hz[p], sc)[1])
    x_right = _best_edge(hd, hz, p + 1, m, hd[p], hz[p], d_rx, z_rx, sc)[1]
    return x_main, left[p], x_right


@_inline
def _edges_db(v_main: float, v_left: float, v_right: float) -> float:
    """Deygout's diffraction loss from its edges' v: the sum of J(v) when the main edge
    diffracts (J > 0), else 0."""
    j_main = _knife_edge_fast(v_main)
    if j_main > 0.0:
        return j_main + _knife_edge_fast(v_left) + _knife_edge_fast(v_right)
    return 0.0


@intrinsic
def _float_bits(typingctx: object, x: types.Type) -> tuple[Signature, Callable[..., Any]]:
    """The IEEE 754 bits of a float64 as an int64 (a register move)."""
    sig = types.int64(types.float64)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _bits_float(typingctx: object, b: types.Type) -> tuple[Signature, Callable[..., Any]]:
    """The float64 with these IEEE 754 bits."""
    sig = types.float64(types.int64)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: Any) -> Any:
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # bits of sqrt(0.5)
_MANTISSA = (1 << 52) - 1
_LOG10_2 = math.log10(2.0)


@_inline
def _db10(x: float) -> float:
    """10 log10(x) for a finite x > 0 (normal), without a library call (vectorises).

    x = 2^e m with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(u), u = (m - 1) / (m + 1),
    |u| <= 0.172, by its series to u^11: relative error below 1e-10, far under the
    float32 output's rounding.
    """
    # numba's stub types an intrinsic's call with its typing context argument, which jitted
    # code does not pass (and as never returning, which holds only outside jitted code)
    b = _float_bits(x) - _SQRT_HALF_BITS  # type: ignore[call-arg]
    e = b >> 52
    m = _bits_float((b & _MANTISSA) + _SQRT_HALF_BITS)
    u = (m - 1.0) / (m + 1.0)
    u2 = u * u
    series = u * (
        2.0
        + u2
        * (2.0 / 3.0 + u2 * (2.0 / 5.0 + u2 * (2.0 / 7.0 + u2 * (2.0 / 9.0 + u2 * (2.0 / 11.0)))))
    )
    return 10.0 * (e * _LOG10_2 + series * (1.0 / math.log(10.0)))


@_inline
def _signed_sqrt(x: float) -> float:
    """sqrt(|x|) with the sign of x (-inf for -inf)."""
    return math.copysign(math.sqrt(abs(x)), x)


@_inline
def _sample_step(k: int, n: int, j0: int, rem: int) -> tuple[int, int]:
    """One sample further along a ray of slope k / n, in exact integers: the sample cell
    j0 = floor(k t / n), with rem = k t - n j0 in [0, n)."""
    rem += k
    carry = int(rem >= n) - int(rem < 0)
    return j0 + carry, rem - carry * n


@_inline
def _lattice_step(k: int, ns: int, step: int, j: int, e: int) -> tuple[int, int]:
    """The same step for the nearest analysis-lattice offset j, with e = k t - n j and
    2e in (-ns, ns] (ns = n step)."""
    e += k
    carry = int(2 * e > ns) - int(2 * e <= -ns)
    return j + carry * step, e - carry * ns


@_inline
def _ray_end(
    t_last: int, slope: float, half: float, d_major: float, d_minor: float, r_max2: float
) -> int:
    """Last row <= t_last where a ray of minor slope `slope` (offset slope t) can own a cell
    within the radius: its cells are at most `half` minor steps from it (0 if none)."""

    def near(t: int) -> bool:
        x = max(slope * t - half, 0.0) * d_minor
        return (t * d_major) ** 2 + x * x <= r_max2 * (1.0 + 1e-9)

    if near(t_last):
        return t_last
    lo, hi = 0, t_last  # near(lo) or lo == 0; not near(hi); near is monotone in t
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if near(mid):
            lo = mid
        else:
            hi = mid
    return lo


@_jit
def deygout_sweep(
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
) -> None:
    """Free-space + Deygout (3 edges) loss from the site to every lattice cell of the window.

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
        Absolute elevation of the antenna, metres.
    rx_h : float
        Receiver height above ground, metres.
    inv_2kr : float
        1 / (2 k R), 1/metres.
    r_max : float
        Radius, metres.
    freqs : float64[nf]
        Frequencies, MHz.
    out : float32[nf, nI, nJ]
        Loss in dB on the lattice; must be pre-filled with NaN.
    """
    nf = freqs.shape[0]
    inv_sqrt_lambda = np.empty(nf)
    fspl_1m = np.empty(nf)  # free-space loss at 1 m
    for f in range(nf):
        inv_sqrt_lambda[f] = 1.0 / math.sqrt(SPEED_OF_LIGHT_M_S / (freqs[f] * 1e6))
        fspl_1m[f] = free_space_loss_db(1.0, freqs[f])
    hd = np.empty(n + 1)  # hull vertices: distance from the site
    hz = np.empty(n + 1)  # hull vertices: curvature-corrected elevation
    sc = np.empty(n + 1)  # scratch: scores of hull vertices
    left = np.empty(n + 1)  # v sqrt(lambda) of the left sub-edge of each vertex; NaN = unknown
    # per cell of a ray: v|v| lambda of the main and right edges, v sqrt(lambda) of the
    # left one, squared path length, lattice cell
    x_main = np.empty(n + 1)
    x_right = np.empty(n + 1)
    g_left = np.empty(n + 1)
    d3sq = np.empty(n + 1)
    loss_q = np.empty(n + 1)
    cell_i = np.empty(n + 1, dtype=np.int64)
    cell_j = np.empty(n + 1, dtype=np.int64)
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
            t_end = _ray_end(t_last, abs(k) / n, 0.5 * step, d_major, d_minor, r_max2)
            m = 0
            q = 0  # cells of this ray so far
            # Exact integer tracking of the ray position k t / n: sample cell
            # j0 = floor(k t / n) with rem = k t - n j0 in [0, n); nearest lattice
            # offset j with e = k t - n j, 2e in (-ns, ns]; the ray is the nearest
            # one to (t, j), and evaluates it, when 2e in (-t step, t step].
            j0 = 0
            rem = 0
            j = j_start
            e = -n * j_start
            t_mod = (1 - t_phase) % step
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
                        d_rx = math.sqrt(dist2)
                        z_rx = z_cell - dist2 * inv_2kr + rx_h
                        x_main[q], g_left[q], x_right[q] = _deygout_edges(
                            hd, hz, m, left, z_tx, d_rx, z_rx, sc
                        )
                        d3sq[q] = max(dist2 + (z_tx - z_rx) ** 2, 1.0)
                        cell_i[q] = int((r - phase_r) * inv_step + 0.5)
                        cell_j[q] = int((c - phase_c) * inv_step + 0.5)
                        q += 1
                t_mod += 1
                if t_mod == step:
                    t_mod = 0
                z = _sample(win, n, t, ar, ac, br, bc, j0, rem / n)
                if z != z:
                    break
                ds = t * seg
                m = _hull_push(hd, hz, m, ds, z - ds * ds * inv_2kr)
                left[m - 1] = math.nan
            # The ray's cells, independent of each other: no chain of dependent
            # latencies (divisions, square roots, table reads) from cell to cell,
            # and loops without branches (vectorised).
            for i in range(q):
                d3sq[i] = _db10(d3sq[i])
                x_main[i] = _signed_sqrt(x_main[i])
                x_right[i] = _signed_sqrt(x_right[i])
            for f in range(nf):
                isl = inv_sqrt_lambda[f]
                for i in range(q):
                    j_main = _knife_edge_table(x_main[i] * isl)
                    edges = (
                        j_main
                        + _knife_edge_table(g_left[i] * isl)
                        + _knife_edge_table(x_right[i] * isl)
                    )
                    loss_q[i] = fspl_1m[f] + d3sq[i] + (edges if j_main > 0.0 else 0.0)
                for i in range(q):
                    if max(x_main[i], g_left[i], x_right[i]) * isl >= _J_V_END:  # rare
                        loss_q[i] = (
                            fspl_1m[f]
                            + d3sq[i]
                            + _edges_db(x_main[i] * isl, g_left[i] * isl, x_right[i] * isl)
                        )
                    out[f, cell_i[i], cell_j[i]] = loss_q[i]


@_inline
def _owner(n: int, step: int, dr: int, dc: int) -> tuple[int, int, int, int]:
    """(cone, t, j, k): the cone, row, offset and ray of the sweeps owning cell (dr, dc)."""
    if dr > 0 and abs(dc) <= dr:
        cone, t, j = 0, dr, dc
    elif dr < 0 and abs(dc) <= -dr:
        cone, t, j = 1, -dr, dc
    elif dc > 0:
        cone, t, j = 2, dc, dr
    else:
        cone, t, j = 3, -dc, dr
    return cone, t, j, step * ((2 * j * n + t * step) // (2 * t * step))


@_jit
def ray_profile(
    win: F32,
    n: int,
    step: int,
    d_row: float,
    d_col: float,
    dr: int,
    dc: int,
    d_out: F64,
    z_out: F64,
) -> int:
    """The profile the sweeps evaluate for cell (dr, dc) of the window (offsets from the site).

    Fills d_out (m from the site) and z_out (terrain, m, without the earth bulge) with
    the site, the owning ray's samples at rows 1..t-1 and the cell centre; returns the
    number of points, 0 where a sample has no terrain (the sweeps leave such cells NaN).
    Arrays of n + 1 suffice; (dr, dc) must not be the site.
    """
    cone, t, j, k = _owner(n, step, dr, dc)
    ar, ac, br, bc, d_major, d_minor, _, _, _ = _cone(cone, n, step, 0, 0, d_row, d_col)
    seg = math.sqrt(d_major * d_major + (k / n * d_minor) ** 2)
    d_out[0] = 0.0
    z_out[0] = win[n, n]
    j0 = 0
    rem = 0
    for s in range(1, t):
        j0, rem = _sample_step(k, n, j0, rem)
        z = _sample(win, n, s, ar, ac, br, bc, j0, rem / n)
        if z != z:
            return 0
        d_out[s] = s * seg
        z_out[s] = z
    d_out[t] = math.sqrt((j * d_minor) ** 2 + (t * d_major) ** 2)
    z_out[t] = win[n + t * ar + j * br, n + t * ac + j * bc]
    return t + 1


@_jit
def deygout_point_losses(
    win: F32,
    n: int,
    step: int,
    d_row: float,
    d_col: float,
    z_tx: float,
    rx_h: float,
    inv_2kr: float,
    r_max: float,
    drs: I64,
    dcs: I64,
    freq: float,
    out: F64,
) -> None:
    """`deygout_sweep`'s loss at a few cells (dr, dc) of the window, one frequency (MHz).

    Walks only each cell's owning ray (`ray_profile`) through the sweep's hull and edge
    search, so a receiver gets the sweep's value in O(distance). NaN beyond the radius
    or without terrain. Other parameters as in `deygout_sweep`.
    """
    isl = 1.0 / math.sqrt(SPEED_OF_LIGHT_M_S / (freq * 1e6))
    fspl_1m = free_space_loss_db(1.0, freq)
    hd = np.empty(n + 1)
    hz = np.empty(n + 1)
    sc = np.empty(n + 1)
    left = np.empty(n + 1)
    d = np.empty(n + 1)
    z = np.empty(n + 1)
    h1 = win[n, n]
    for q in range(drs.shape[0]):
        out[q] = math.nan
        dr, dc = drs[q], dcs[q]
        dist2 = (dr * d_row) ** 2 + (dc * d_col) ** 2
        if dist2 > r_max * r_max or max(abs(dr), abs(dc)) > n:
            continue
        if dr == 0 and dc == 0:
            if h1 == h1:
                out[q] = free_space_loss_db(max(abs(z_tx - h1 - rx_h), 1.0), freq)
            continue
        count = ray_profile(win, n, step, d_row, d_col, dr, dc, d, z)
        if count == 0 or z[count - 1] != z[count - 1]:
            continue
        m = 0
        for s in range(1, count - 1):
            m = _hull_push(hd, hz, m, d[s], z[s] - d[s] * d[s] * inv_2kr)
        left[:m] = math.nan
        d_rx = d[count - 1]
        z_rx = z[count - 1] - dist2 * inv_2kr + rx_h
        x_main, g_left, x_right = _deygout_edges(hd, hz, m, left, z_tx, d_rx, z_rx, sc)
        out[q] = (
            fspl_1m
            + _db10(max(dist2 + (z_tx - z_rx) ** 2, 1.0))
            + _edges_db(_signed_sqrt(x_main) * isl, g_left * isl, _signed_sqrt(x_right) * isl)
        )


@_jit
def empirical_sweep(
    win: F32,
    n: int,
    step: int,
    phase_r: int,
    phase_c: int,
    d_row: float,
    d_col: float,
    r_max: float,
    los: Bools,
    use_rma: bool,
    freqs: F64,
    h_bs: float,
    rx_h: float,
    rma_h: float,
    rma_w: float,
    hata_c: float,
    out: F32,
) -> None:
    """RMa (LOS/NLOS from `los`, bool on the lattice) or COST-231 Hata loss on the lattice.

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
                    out[f, ii, jj] = rma_path_loss_db(
                        d, freqs[f], h_bs, rx_h, los[ii, jj], rma_h, rma_w
                    )
                else:
                    out[f, ii, jj] = cost231_hata_db(d, freqs[f], h_bs, rx_h, hata_c)


@_jit
def accumulate(
    loss: F32,
    loss_r0: int,
    loss_c0: int,
    elev: F64,
    reg_r0: int,
    reg_c0: int,
    best_rsrp: F32,
    best_idx: npt.NDArray[np.int32],
    sum_mw: F64,
    gx0: float,
    gdx: float,
    gy0: float,
    gdy: float,
    site_x: float,
    site_y: float,
    z_tx: float,
    rx_h: float,
    inv_2kr: float,
    sec_loss_f: I64,
    sec_slot: I64,
    sec_index: I64,
    sec_az: F64,
    sec_mtilt: F64,
    sec_etilt: F64,
    sec_hbw: F64,
    sec_vbw: F64,
    sec_gain: F64,
    sec_pre: F64,
    front_to_back_db: float,
    side_lobe_v_db: float,
    rx_gain_db: float,
) -> None:
    """Add the sectors of one site to a region of the mosaic.

    Parameters
    ----------
    loss : float32[nf, h, w]
        Site path loss on the analysis grid, [:, 0, 0] at grid cell (loss_r0, loss_c0).
    elev : float[rows, cols]
        Ground elevation over the region.
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
    cos_az, sin_az = np.cos(np.radians(sec_az)), np.sin(np.radians(sec_az))
    i_lo = max(reg_r0, loss_r0)
    i_hi = min(reg_r0 + rows, loss_r0 + loss.shape[1])
    j_lo = max(reg_c0, loss_c0)
    j_hi = min(reg_c0 + cols, loss_c0 + loss.shape[2])
    for i in range(i_lo, i_hi):
        y = gy0 + i * gdy
        for j in range(j_lo, j_hi):
            if loss[0, i - loss_r0, j - loss_c0] != loss[0, i - loss_r0, j - loss_c0]:
                continue
            bearing, depression, un, ue = view_angles(
                gx0 + j * gdx - site_x,
                y - site_y,
                z_tx - elev[i - reg_r0, j - reg_c0] - rx_h,
                inv_2kr,
            )
            for q in range(sec_az.shape[0]):
                gain = tilted_gain_dbi(
                    wrap_deg(bearing - sec_az[q]),
                    un * cos_az[q] + ue * sin_az[q],
                    depression,
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
                sum_mw[sec_slot[q], i - reg_r0, j - reg_c0] += math.exp(rsrp * DB_TO_NEPER_10)
                if rsrp > best_rsrp[i - reg_r0, j - reg_c0]:
                    best_rsrp[i - reg_r0, j - reg_c0] = rsrp
                    best_idx[i - reg_r0, j - reg_c0] = sec_index[q]
