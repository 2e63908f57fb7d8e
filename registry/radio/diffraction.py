"""Terrain diffraction: ITU-R P.526 knife edge and the Deygout construction.

`deygout_loss_db` is the exact reference on one terrain profile: it looks at
every profile point (its compiled core is `deygout_profile_db`).
The coverage sweep (`registry.radio._kernels`) computes the same construction
incrementally along rays; see its module docstring for how the two relate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import numpy as np
import numpy.typing as npt
from numba import njit
from numba.extending import register_jitable
from numpy.typing import ArrayLike

from registry.radio.pathloss import SPEED_OF_LIGHT_M_S, log10

F64 = npt.NDArray[np.float64]

KNIFE_EDGE_V_MIN = -0.78  # ITU-R P.526 eq. (31): J(v) = 0 for v <= -0.78


@register_jitable
def knife_edge_loss_db(v: float) -> float:
    """Single knife-edge diffraction loss J(v), ITU-R P.526 eq. (31).

    J(v) = 6.9 + 20 log10(sqrt((v - 0.1)^2 + 1) + v - 0.1) for v > -0.78, else 0.

    Parameters
    ----------
    v : float
        Fresnel-Kirchhoff diffraction parameter (dimensionless).

    Returns
    -------
    float
        Loss in dB (>= 0 up to rounding at v = -0.78).

    Examples
    --------
    >>> [round(knife_edge_loss_db(v), 2) for v in (-0.78, 0.0, 1.0, 3.0)]
    [0.0, 6.03, 13.93, 22.42]
    """
    if v <= KNIFE_EDGE_V_MIN:
        return 0.0
    w = v - 0.1
    return 6.9 + 20.0 * log10(math.sqrt(w * w + 1.0) + w)


@overload
def fresnel_parameter(h_m: float, d1_m: float, d2_m: float, freq_mhz: float) -> float: ...
@overload
def fresnel_parameter(
    h_m: float | np.ndarray, d1_m: float | np.ndarray, d2_m: float | np.ndarray, freq_mhz: float
) -> float | np.ndarray: ...
@register_jitable
def fresnel_parameter(
    h_m: float | np.ndarray, d1_m: float | np.ndarray, d2_m: float | np.ndarray, freq_mhz: float
) -> float | np.ndarray:
    """Diffraction parameter v = h sqrt(2 (d1 + d2) / (lambda d1 d2)), ITU-R P.526 eq. (26).

    Parameters
    ----------
    h_m : float or numpy.ndarray
        Height of the edge above the straight line joining the two ends, metres
        (negative below it).
    d1_m, d2_m : float or numpy.ndarray
        Distances from the edge to either end, metres (> 0).
    freq_mhz : float
        Frequency in MHz.

    Returns
    -------
    float or numpy.ndarray
        v (dimensionless), broadcast over the inputs.

    Examples
    --------
    >>> round(float(fresnel_parameter(10.0, 1000.0, 1000.0, 1800.0)), 3)
    1.55
    """
    wavelength_m = SPEED_OF_LIGHT_M_S / (freq_mhz * 1e6)
    return h_m * np.sqrt(2.0 * (d1_m + d2_m) / (wavelength_m * d1_m * d2_m))


@njit(cache=True, nogil=True)
def _dominant_edge(
    d: F64, z: F64, i0: int, z0: float, i1: int, z1: float, freq_mhz: float
) -> tuple[int, float]:  # pragma: no cover - numba
    """Index and v of the profile point between i0 and i1 (exclusive) with the largest v.

    (-1, -inf) when there is none; the first NaN v wins, as numpy's argmax would.
    """
    best_i, best_v = -1, -math.inf
    for i in range(i0 + 1, i1):
        d1 = d[i] - d[i0]
        d2 = d[i1] - d[i]
        v = fresnel_parameter(z[i] - (z0 + (z1 - z0) * d1 / (d1 + d2)), d1, d2, freq_mhz)
        if v != v:
            return i, v
        if v > best_v:
            best_i, best_v = i, v
    return best_i, best_v


@njit(cache=True, nogil=True)
def deygout_profile_db(
    d: F64, z: F64, z_tx_m: float, z_rx_m: float, freq_mhz: float
) -> float:  # pragma: no cover - numba
    """`deygout_loss_db` with the antennas as absolute heights: compiled, callable from kernels.

    Parameters
    ----------
    d, z : float64[n]
        Profile distances and earth-curvature corrected heights, as in `deygout_loss_db`.
    z_tx_m, z_rx_m : float
        Heights of the transmitter and receiver antennas on the scale of ``z``, metres.
    freq_mhz : float
        Frequency in MHz.
    """
    last = d.size - 1
    p, v_main = _dominant_edge(d, z, 0, z_tx_m, last, z_rx_m, freq_mhz)
    loss = knife_edge_loss_db(v_main)
    if loss == 0.0:
        return 0.0
    v_left = _dominant_edge(d, z, 0, z_tx_m, p, z[p], freq_mhz)[1]
    v_right = _dominant_edge(d, z, p, z[p], last, z_rx_m, freq_mhz)[1]
    return loss + knife_edge_loss_db(v_left) + knife_edge_loss_db(v_right)


def deygout_loss_db(
    distance_m: ArrayLike,
    height_m: ArrayLike,
    tx_height_m: float,
    rx_height_m: float,
    freq_mhz: float,
) -> float:
    """Diffraction loss over a terrain profile by the Deygout method, up to 3 edges.

    The main edge is the profile point with the largest v on the path
    transmitter-receiver; if J(v_main) > 0, the largest-v points of the two
    sub-paths (transmitter-edge, edge-receiver; edge at terrain height) add
    their J(v). Loss = J(v_main) + J(v_left) + J(v_right) (ITU-R P.526-13 §4.5,
    without the empirical correction).

    Parameters
    ----------
    distance_m : array_like
        Horizontal distance of each profile point from the transmitter, metres,
        increasing, first 0 and last at the receiver.
    height_m : array_like
        Terrain height of each point in metres, already corrected for earth
        curvature (e.g. `registry.terrain.TerrainProfile.effective_m`).
    tx_height_m, rx_height_m : float
        Antenna heights above the first and last profile point, metres.
    freq_mhz : float
        Frequency in MHz.

    Returns
    -------
    float
        Diffraction loss in dB (excess over free space).

    Examples
    --------
    >>> d = [0.0, 500.0, 1000.0]
    >>> round(deygout_loss_db(d, [0.0, 10.0, 0.0], 0.0, 0.0, 1800.0), 2)
    19.79
    """
    d = np.ascontiguousarray(distance_m, dtype=np.float64)
    z = np.ascontiguousarray(height_m, dtype=np.float64)
    return float(deygout_profile_db(d, z, z[0] + tx_height_m, z[-1] + rx_height_m, freq_mhz))


@dataclass(frozen=True)
class DiffractionEdge:
    """One knife edge of the Deygout construction on a profile.

    ``index`` is the profile point, ``distance_m`` its distance from the first point,
    ``height_m`` its height on the profile's scale (e.g. with the earth bulge), ``v`` its
    Fresnel-Kirchhoff parameter and ``loss_db`` its J(v); ``principal`` is the main edge
    (largest v over the whole path), the others are the secondary edges of its two sub-paths.
    """

    index: int
    distance_m: float
    height_m: float
    v: float
    loss_db: float
    principal: bool


def deygout_edges(
    distance_m: ArrayLike, height_m: ArrayLike, z_tx_m: float, z_rx_m: float, freq_mhz: float
) -> list[DiffractionEdge]:
    """The edges of `deygout_profile_db` (principal first), whose losses sum to its loss.

    The secondary edges are looked for only when the principal one has a loss, as there.

    Examples
    --------
    >>> [e.index for e in deygout_edges([0.0, 500.0, 1000.0], [0.0, 10.0, 0.0], 0.0, 0.0, 1800.0)]
    [1]
    """
    d = np.ascontiguousarray(distance_m, dtype=np.float64)
    z = np.ascontiguousarray(height_m, dtype=np.float64)
    last = d.size - 1

    def edge(i: int, v: float, principal: bool) -> DiffractionEdge:
        return DiffractionEdge(
            i, float(d[i]), float(z[i]), float(v), knife_edge_loss_db(v), principal
        )

    p, v_main = _dominant_edge(d, z, 0, z_tx_m, last, z_rx_m, freq_mhz)
    if p < 0:
        return []
    edges = [edge(p, v_main, True)]
    if edges[0].loss_db == 0.0:
        return edges
    for i0, z0, i1, z1 in ((0, z_tx_m, p, z[p]), (p, z[p], last, z_rx_m)):
        i, v = _dominant_edge(d, z, i0, z0, i1, z1, freq_mhz)
        if i >= 0:
            edges.append(edge(i, v, False))
    return edges
