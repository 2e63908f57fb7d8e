"""CUDA kernels of the radio engine (private; use `registry.radio.gpu`).

The algorithms of `registry.radio._kernels`, laid out for a GPU, on a batch of B site
windows in device memory: ``wins`` float32 [B, 2n + 1, 2n + 1], site at [n, n], NaN = no
data. The per-cell arithmetic is the CPU kernels' own: their helpers (`_cone`, `_sample`,
`_hull_push`, `_best_edge`, `_signed_sqrt`, `_ray_end`, `_knife_edge_fast`, `_los_cell`)
are recompiled here as CUDA device functions from the same Python source, and the model
functions (`free_space_loss_db`, `rma_path_loss_db`, `cost231_hata_db`) are the public
ones. Values read from float32 arrays are widened explicitly where the CPU kernels'
typing widens them, so the CUDA simulator (numpy scalars) computes what the device does.

Radial sweep (`deygout_kernel`): one thread per ray per site. Thread (b, cone, k) walks
ray k of the cone as `deygout_sweep` does (the same integer tracking of the row crossings,
samples, upper hull, edge searches and left-edge cache) and evaluates each cell it owns
at once; the CPU kernel defers that to vectorised loops with a series for 10 log10
(within 1e-10 dB of the library's used here). Every lattice cell is owned by one ray, so
no two threads write the same cell. Hull, left-edge and score arrays are thread-local,
of a capacity fixed at compile time (one compiled kernel per capacity).

Line of sight (`los_origin`, `los_axial`, `los_lateral`): the propagation of `los_grid`.
A cell's horizon depends only on its two neighbours one step nearer the observer along
its major axis, so the cells of one row (up and down cones, diagonals included) or of
one column (left and right cones) are independent: one block per cone per site walks the
rows (columns) outward, its threads sharing each row (column), with a barrier between
steps. The horizon states live in a float32 [B, 2n + 1, 2n + 1] array in device memory.
`los_origin` does the observer and its two row neighbours (which the up and down cones'
first rows read), `los_axial` the up and down cones, `los_lateral` the left and right
cones (which read the diagonals), launched in that order on one stream. The arithmetic
and its float32 / float64 types are `los_grid`'s, so the masks are the same (short of an
exact tie between a cell and its horizon that a fused multiply-add, on either side,
rounds the other way).

Empirical models (`empirical_kernel`): one thread per lattice cell per site, as
`empirical_sweep`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import cuda

from registry.radio import _kernels as cpu
from registry.radio.pathloss import cost231_hata_db, free_space_loss_db, rma_path_loss_db

FAR = np.float32(cpu._FAR)  # `los_grid`'s finite stand-in for an infinite slope


def _device(kernel_helper: Any) -> Callable[..., Any]:
    """A CPU kernel helper (an inlined njit function) compiled as a CUDA device function."""
    return cuda.jit(device=True)(kernel_helper.py_func)


_cone = _device(cpu._cone)
_sample = _device(cpu._sample)
_hull_push = _device(cpu._hull_push)
_best_edge = _device(cpu._best_edge)
_signed_sqrt = _device(cpu._signed_sqrt)
_ray_end = _device(cpu._ray_end)
_sample_step = _device(cpu._sample_step)
_lattice_step = _device(cpu._lattice_step)
_knife_edge = _device(cpu._knife_edge_fast)
_los_cell = _device(cpu._los_cell)
_free_space = cuda.jit(device=True)(free_space_loss_db)
_rma = cuda.jit(device=True)(rma_path_loss_db)
_hata = cuda.jit(device=True)(cost231_hata_db)


@cuda.jit
def fill(flat, value):
    """Set every element of a 1D array to `value`."""
    i = cuda.grid(1)
    if i < flat.shape[0]:
        flat[i] = value


# --------------------------------------------------------------------------- sweep


@cuda.jit(device=True)
def _cell_losses(out, b, i, j, d3sq, x_main, g_left, x_right, isl, fspl_1m, nf):
    """Free space + Deygout of one cell for each frequency of site b (as `deygout_sweep`)."""
    db = 10.0 * math.log10(max(d3sq, 1.0))
    for f in range(nf):
        s = isl[b, f]
        j_main = _knife_edge(x_main * s)
        edges = 0.0
        if j_main > 0.0:
            edges = j_main + _knife_edge(g_left * s) + _knife_edge(x_right * s)
        out[b, f, i, j] = fspl_1m[b, f] + db + edges


@functools.cache
def deygout_kernel(capacity: int) -> Any:
    """The sweep kernel with thread-local hull arrays of `capacity` (>= n + 1) vertices.

    Launch with one thread per (site, cone, ray): B * 4 * (2n / step + 1) threads.
    Arguments: wins, step, phases int64 [B, 2] (first lattice row/column of each window),
    d_row, d_col, z_tx float64 [B], rx_h, inv_2kr, r_max, then per site and frequency
    isl (1 / sqrt(lambda)), fspl_1m (free-space loss at 1 m), freqs (MHz), float64 [B, F],
    nfs int64 [B] (frequencies used of each row), and out float32 [B, F, I, J] filled with
    NaN, site b's lattice cell (i, j) at out[b, :, i, j].
    """

    @cuda.jit
    def kernel(
        wins, step, phases, d_row, d_col, z_tx, rx_h, inv_2kr, r_max, isl, fspl_1m, freqs, nfs, out
    ):
        n = (wins.shape[1] - 1) // 2
        n_rays = 2 * n // step + 1
        g = cuda.grid(1)
        b = g // (4 * n_rays)
        if b >= wins.shape[0]:
            return
        rest = g - b * 4 * n_rays
        cone = rest // n_rays
        k = (rest - cone * n_rays) * step - n
        win = wins[b]
        phase_r = phases[b, 0]
        phase_c = phases[b, 1]
        zt = z_tx[b]
        nf = nfs[b]
        r_max2 = r_max * r_max
        if rest == 0 and (n - phase_r) % step == 0 and (n - phase_c) % step == 0:
            z_site = np.float64(win[n, n])
            if z_site == z_site:
                d3 = max(abs(zt - z_site - rx_h), 1.0)
                for f in range(nf):
                    out[b, f, (n - phase_r) // step, (n - phase_c) // step] = _free_space(
                        d3, freqs[b, f]
                    )
        hd = cuda.local.array(capacity, np.float64)
        hz = cuda.local.array(capacity, np.float64)
        sc = cuda.local.array(capacity, np.float64)
        left = cuda.local.array(capacity, np.float64)
        ar, ac, br, bc, d_major, d_minor, strict, t_phase, j_phase = _cone(
            cone, n, step, phase_r, phase_c, d_row, d_col
        )
        t_last = min(n, int(r_max / d_major))
        ns = n * step
        j_start = j_phase - step if 2 * j_phase > step else j_phase
        seg = math.sqrt(d_major * d_major + (k / n * d_minor) ** 2)
        t_end = _ray_end(t_last, abs(k) / n, 0.5 * step, d_major, d_minor, r_max2)
        m = 0
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
                z_cell = np.float64(win[r, c])
                if (aj < t or (aj == t and not strict)) and dist2 <= r_max2 and z_cell == z_cell:
                    d_rx = math.sqrt(dist2)
                    z_rx = z_cell - dist2 * inv_2kr + rx_h
                    p, x_main = _best_edge(hd, hz, 0, m, 0.0, zt, d_rx, z_rx, sc)
                    x_right = -math.inf
                    g_left = 0.0
                    if p >= 0:
                        if left[p] != left[p]:
                            left[p] = _signed_sqrt(
                                _best_edge(hd, hz, 0, p, 0.0, zt, hd[p], hz[p], sc)[1]
                            )
                        g_left = left[p]
                        x_right = _best_edge(hd, hz, p + 1, m, hd[p], hz[p], d_rx, z_rx, sc)[1]
                    _cell_losses(
                        out,
                        b,
                        (r - phase_r) // step,
                        (c - phase_c) // step,
                        dist2 + (zt - z_rx) ** 2,
                        _signed_sqrt(x_main),
                        g_left,
                        _signed_sqrt(x_right),
                        isl,
                        fspl_1m,
                        nf,
                    )
            t_mod += 1
            if t_mod == step:
                t_mod = 0
            z = np.float64(_sample(win, n, t, ar, ac, br, bc, j0, np.float64(rem) / n))
            if z != z:
                break
            ds = t * seg
            m = _hull_push(hd, hz, m, ds, z - ds * ds * inv_2kr)
            left[m - 1] = math.nan

    return kernel


# --------------------------------------------------------------------------- line of sight


@cuda.jit(device=True)
def _base(x, d_col, inv_2kr, z_tx):
    """`los_grid`'s base of column offset x: minus the observer and the curvature drop."""
    return np.float32(-((x * d_col) ** 2) * inv_2kr - z_tx)


@cuda.jit(device=True)
def _drop(t, d_row, inv_2kr):
    """`los_grid`'s curvature drop of row offset t."""
    return np.float32(-((t * d_row) ** 2) * inv_2kr)


@cuda.jit
def los_origin(wins, z_tx, x_hi, d_row, d_col, rx_h, inv_2kr, mask, state):
    """The observer cell and its two row neighbours; one thread per site.

    x_hi int64 [n + 1]: `_offset_max` of each row offset (the cells within the radius);
    mask bool [B, 2n + 1, 2n + 1] pre-filled with False; state float32 like the windows.
    """
    b = cuda.grid(1)
    if b >= wins.shape[0]:
        return
    n = (wins.shape[1] - 1) // 2
    z = wins[b, n, n]
    mask[b, n, n] = z == z
    state[b, n, n] = -FAR
    if x_hi[0] >= 1:
        base = _base(1, d_col, inv_2kr, z_tx[b])
        for side in range(2):
            c = n + 1 - 2 * side
            _los_cell(
                wins[b, n],
                mask[b, n],
                state[b, n],
                c,
                0,
                base,
                np.float32(rx_h),
                np.float32(1.0),
                np.float64(-FAR),
                FAR,
            )


@cuda.jit
def los_axial(wins, z_tx, x_hi, d_row, d_col, rx_h, inv_2kr, mask, state):
    """Down and up cones (|column offset| <= row offset): block 2b + i, row by row."""
    b = cuda.blockIdx.x // 2
    sign = 1 - 2 * (cuda.blockIdx.x % 2)
    n = (wins.shape[1] - 1) // 2
    zt = z_tx[b]
    h_rx = np.float32(rx_h)
    for t in range(1, n + 1):
        width = min(x_hi[t], t)
        if width < 0:
            break
        r = n + sign * t
        zr = wins[b, r]
        o = mask[b, r]
        cur = state[b, r]
        prev = state[b, r - sign]
        inv_t = np.float32(1.0 / t)
        drop = _drop(t, d_row, inv_2kr)
        for x in range(cuda.threadIdx.x - width, width + 1, cuda.blockDim.x):
            c = n + x
            ax = abs(x)
            near = c - 1 if x > 0 else c + 1  # the neighbour nearer the column axis
            if ax == 0:
                h = np.float64(prev[c])
            elif ax == t:
                h = np.float64(prev[near])
            else:
                h = np.float64(prev[c]) + np.float64(ax) * np.float64(inv_t) * np.float64(
                    prev[near] - prev[c]
                )
            _los_cell(zr, o, cur, c, 0, _base(x, d_col, inv_2kr, zt) + drop, h_rx, inv_t, h, FAR)
        cuda.syncthreads()


@cuda.jit
def los_lateral(wins, z_tx, x_hi, d_row, d_col, rx_h, inv_2kr, mask, state):
    """Right and left cones (|row offset| < column offset): block 2b + i, column by column."""
    b = cuda.blockIdx.x // 2
    sign = 1 - 2 * (cuda.blockIdx.x % 2)
    n = (wins.shape[1] - 1) // 2
    zt = z_tx[b]
    h_rx = np.float32(rx_h)
    for x in range(2, x_hi[0] + 1):
        col = n + sign * x
        zc = wins[b, :, col]
        o = mask[b, :, col]
        cur = state[b, :, col]
        prev = state[b, :, col - sign]
        s = np.float32(1.0 / x)
        base = _base(x, d_col, inv_2kr, zt)
        for t in range(cuda.threadIdx.x - x + 1, x, cuda.blockDim.x):
            at = abs(t)
            if x <= x_hi[at]:
                r = n + t
                if t == 0:
                    _los_cell(zc, o, cur, r, 0, base, h_rx, s, np.float64(prev[r]), FAR)
                else:
                    near = r - 1 if t > 0 else r + 1  # the neighbour nearer the row axis
                    h = np.float64(prev[r]) + np.float64(at) * np.float64(s) * np.float64(
                        prev[near] - prev[r]
                    )
                    _los_cell(zc, o, cur, r, 0, base + _drop(at, d_row, inv_2kr), h_rx, s, h, FAR)
        cuda.syncthreads()


# --------------------------------------------------------------------------- empirical


@cuda.jit
def empirical_kernel(
    wins,
    step,
    phases,
    d_row,
    d_col,
    r_max,
    los,
    use_rma,
    freqs,
    nfs,
    h_bs,
    rx_h,
    rma_h,
    rma_w,
    hata_c,
    out,
):
    """RMa (LOS from `los`, bool like the windows) or COST-231 Hata; one thread per cell.

    Arguments as in `deygout_kernel`; h_bs float64 [B] is each antenna's height above ground.
    """
    n = (wins.shape[1] - 1) // 2
    cells = out.shape[2] * out.shape[3]
    g = cuda.grid(1)
    b = g // cells
    if b >= wins.shape[0]:
        return
    ii = (g - b * cells) // out.shape[3]
    jj = g - b * cells - ii * out.shape[3]
    r = phases[b, 0] + ii * step
    c = phases[b, 1] + jj * step
    if r > 2 * n or c > 2 * n:
        return
    dy = (r - n) * d_row
    dx = (c - n) * d_col
    dist2 = dx * dx + dy * dy
    z = wins[b, r, c]
    if dist2 > r_max * r_max or z != z:
        return
    d = math.sqrt(dist2)
    for f in range(nfs[b]):
        if use_rma:
            out[b, f, ii, jj] = _rma(d, freqs[b, f], h_bs[b], rx_h, los[b, r, c], rma_h, rma_w)
        else:
            out[b, f, ii, jj] = _hata(d, freqs[b, f], h_bs[b], rx_h, hata_c)
