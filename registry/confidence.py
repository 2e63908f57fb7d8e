"""Confidence of a readiness verdict: the probability that a place gets the class it wants.

A verdict compares one predicted number with a threshold; a few metres of terrain, or the
model's own spread, can flip it. The confidence turns the margin into a probability::

    margin_db = SINR_median - SINR_needed
    sigma_db  = sqrt(sigma_loc^2 + sigma_terrain^2)
    p_meets   = Phi(margin_db / sigma_db)                 (Phi: the standard normal CDF)

- ``SINR_median`` is the uplink SINR to the serving sector for 50 % of locations: the RSRP of
  the coverage grid plus the sector's uplink offset (UE power - power per RE - noise -
  interference margin, `SectorUplink`), i.e. the grid's rate-level SINR with the uplink
  budget's shadow margin (`UplinkParams.shadow_sigma_db` at its location reliability) added
  back;
- ``SINR_needed`` is the SINR at which the TR 36.942 Annex A mapping reaches the rate the
  wanted class needs on the grid's carrier share (stream sharing converts the wanted rate
  first, `required_sinr_db`); +inf where even the mapping's ceiling falls short;
- ``sigma_loc`` is the location variability: by default the uplink budget's shadow sigma
  (8 dB, TR 38.901 Table 7.4.1-1 RMa NLOS) so that a verdict meeting its class on flat
  ground reads p >= the budget's location reliability (0.9); or ITU-R P.1812-8 §4.7's sigma_L;
  or a configured value;
- ``sigma_terrain`` is the local terrain sensitivity: the standard deviation of the grid's
  best-server RSRP over the analysis cells whose centres lie within
  `ConfidenceParams.terrain_radius_m` of the place (values floored at the usable-signal floor,
  so a neighbour without service counts as the floor).

A place with no usable link, or whose backhaul share alone is short of the wanted rate, has
p = 0. The levels: ``likely`` (p >= `likely_min_p`), ``unlikely`` (p < `unlikely_max_p`), else
``borderline`` ("test on site first").

Pure functions on arrays and plain values: no Flask, no database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
from affine import Affine

from registry.radio import p1812
from registry.radio.coverage import CoverageParams, SectorSpec
from registry.radio.coverage.mosaic import sector_table
from registry.radio.linkbudget import UplinkParams

LEVELS: tuple[str, ...] = ("likely", "borderline", "unlikely")
"""Confidence levels, best first."""
_NORMAL = NormalDist()


@dataclass(frozen=True)
class ConfidenceParams:
    """Thresholds and neighbourhood of the confidence (``READINESS_*`` settings)."""

    likely_min_p: float = 0.8  # p at or above: likely
    unlikely_max_p: float = 0.2  # p below: unlikely; between: borderline (test on site first)
    terrain_radius_m: float = 150.0  # neighbourhood of the terrain sensitivity
    #: sigma_loc: "shadow" = the uplink budget's shadow sigma (8 dB, TR 38.901 Table 7.4.1-1
    #: RMa NLOS); "p1812" = sigma_L of ITU-R P.1812-8 §4.7 at the sector's frequency (UE
    #: height, no clutter, the Recommendation's 100 m square); or a value in dB.
    location_sigma: float | Literal["shadow", "p1812"] = "shadow"

    def __post_init__(self) -> None:
        if isinstance(self.location_sigma, str):
            if self.location_sigma not in ("shadow", "p1812"):
                raise ValueError("location_sigma must be 'shadow', 'p1812' or a number of dB")
        elif not self.location_sigma >= 0.0:
            raise ValueError("location_sigma must be >= 0 dB")
        if not 0.0 <= self.unlikely_max_p <= self.likely_min_p <= 1.0:
            raise ValueError("need 0 <= unlikely_max_p <= likely_min_p <= 1")
        if self.terrain_radius_m < 0.0:
            raise ValueError("terrain_radius_m must be >= 0")


@dataclass(frozen=True)
class SectorUplink:
    """A sector's uplink constants for the confidence (see the module docstring).

    ``sinr_offset_db``: median uplink SINR = RSRP + this; ``bandwidth_hz`` and
    ``time_fraction`` of the phone's allocation; ``location_sigma_db``: sigma_loc.
    """

    sinr_offset_db: float
    bandwidth_hz: float
    time_fraction: float
    location_sigma_db: float


@dataclass(frozen=True)
class Confidence:
    """How sure a verdict is: p, its level, and the margin and sigma behind them (dB)."""

    p_meets_wanted: float | None  # None: not known (see `confidence`)
    confidence: str
    margin_db: float | None = None
    sigma_db: float | None = None


def sector_uplinks(
    sectors: Sequence[SectorSpec], coverage: CoverageParams, params: ConfidenceParams
) -> dict[str, SectorUplink]:
    """Each sector's constants by sector code, from the mosaic's own sector table (so the
    offsets are those the grids were made with)."""
    table = sector_table(sectors, coverage)
    out = {}
    for i, s in enumerate(sectors):
        if params.location_sigma == "shadow":
            sigma = coverage.uplink.shadow_sigma_db
        elif params.location_sigma == "p1812":
            sigma = p1812.location_sigma_db(
                s.freq_mhz / 1000.0, coverage.radio.ue_height_m, 0.0, p1812.AREA_WIDTH_DEFAULT_M
            )
        else:
            sigma = float(params.location_sigma)
        out[s.sector_code] = sector_uplink(
            pre_dbm=float(table.pre_dbm[i]),
            ue_power_dbm=float(table.ul_power_dbm[i]),
            noise_dbm=float(table.ul_noise_dbm[i]),
            bandwidth_hz=float(table.ul_bandwidth_hz[i]),
            time_fraction=float(table.ul_time_fraction[i]),
            uplink=coverage.uplink,
            location_sigma_db=sigma,
        )
    return out


def sector_uplink(
    *,
    pre_dbm: float,
    ue_power_dbm: float,
    noise_dbm: float,
    bandwidth_hz: float,
    time_fraction: float,
    uplink: UplinkParams,
    location_sigma_db: float,
) -> SectorUplink:
    """The constants of one sector from its uplink budget and power per resource element.

    Examples
    --------
    >>> s = sector_uplink(pre_dbm=15.2, ue_power_dbm=23.0, noise_dbm=-99.5, bandwidth_hz=9e6,
    ...     time_fraction=1.0, uplink=UplinkParams(), location_sigma_db=8.0)
    >>> round(s.sinr_offset_db, 1)  # 23 - 15.2 + 99.5 - 3 (interference margin)
    104.3
    """
    return SectorUplink(
        ue_power_dbm - pre_dbm - noise_dbm - uplink.interference_margin_db,
        bandwidth_hz,
        time_fraction,
        location_sigma_db,
    )


def required_sinr_db(
    rate_mbps: float, bandwidth_hz: float, time_fraction: float, uplink: UplinkParams
) -> float:
    """The uplink SINR at which the TR 36.942 Annex A mapping gives ``rate_mbps``.

    -inf for no rate, SINR_MIN up to the rate at SINR_MIN, +inf above the ceiling
    (Thr_MAX x bandwidth x time fraction).

    Examples
    --------
    >>> round(required_sinr_db(4.0, 9e6, 1.0, UplinkParams()), 2)  # 0.444 bit/s/Hz
    0.65
    >>> required_sinr_db(20.0, 9e6, 1.0, UplinkParams())
    inf
    """
    if rate_mbps <= 0.0:
        return -math.inf
    se = rate_mbps * 1e6 / (bandwidth_hz * time_fraction)
    if se > uplink.max_spectral_efficiency_bps_hz:
        return math.inf
    sinr = 10.0 * math.log10(2.0 ** (se / uplink.alpha) - 1.0)
    return max(sinr, uplink.sinr_min_db)


def terrain_sigma_db(
    rsrp_dbm: np.ndarray,
    transform: Affine,
    x_m: float,
    y_m: float,
    *,
    radius_m: float,
    floor_dbm: float,
) -> float:
    """Spread (standard deviation, dB) of the RSRP grid over the cells whose centres lie
    within ``radius_m`` of the point (always the cell holding it), values floored at
    ``floor_dbm`` (NaN, no server, counts as the floor); 0 off the grid.

    Examples
    --------
    >>> grid = np.array([[-90.0, -100.0, -110.0]] * 3)
    >>> t = Affine(10.0, 0, 0, 0, -10.0, 30.0)
    >>> round(terrain_sigma_db(grid, t, 15.0, 15.0, radius_m=10.0, floor_dbm=-120.0), 2)
    6.32
    """
    col, row = ~transform @ (x_m, y_m)
    r0, c0 = math.floor(row), math.floor(col)
    rows, cols = rsrp_dbm.shape
    if not (0 <= r0 < rows and 0 <= c0 < cols):
        return 0.0
    reach_r = int(radius_m // abs(transform.e)) + 1
    reach_c = int(radius_m // abs(transform.a)) + 1
    r_lo, r_hi = max(0, r0 - reach_r), min(rows, r0 + reach_r + 1)
    c_lo, c_hi = max(0, c0 - reach_c), min(cols, c0 + reach_c + 1)
    rr, cc = np.mgrid[r_lo:r_hi, c_lo:c_hi]
    xs = transform.c + (cc + 0.5) * transform.a
    ys = transform.f + (rr + 0.5) * transform.e
    near = np.hypot(xs - x_m, ys - y_m) <= radius_m
    near[r0 - r_lo, c0 - c_lo] = True
    values = np.asarray(rsrp_dbm[r_lo:r_hi, c_lo:c_hi], dtype=np.float64)[near]
    values = np.fmax(values, floor_dbm)  # fmax: NaN gives the floor
    return float(values.std())


def level(p: float, params: ConfidenceParams) -> str:
    """The confidence level of a probability.

    Examples
    --------
    >>> [level(p, ConfidenceParams()) for p in (0.95, 0.5, 0.05)]
    ['likely', 'borderline', 'unlikely']
    """
    if p >= params.likely_min_p:
        return "likely"
    if p < params.unlikely_max_p:
        return "unlikely"
    return "borderline"


def p_meets(margin_db: float, sigma_db: float) -> float:
    """Phi(margin / sigma); a step at 0 margin when sigma is 0.

    Examples
    --------
    >>> round(p_meets(10.25, 8.0), 3), p_meets(math.inf, 8.0), p_meets(-1.0, 0.0)
    (0.9, 1.0, 0.0)
    """
    if math.isinf(margin_db) or sigma_db <= 0.0:
        return 1.0 if margin_db >= 0.0 else 0.0
    return _NORMAL.cdf(margin_db / sigma_db)


def confidence(
    *,
    need_mbps: float,
    radio_factor: float,
    backhaul_mbps: float,
    rsrp_dbm: float | None,
    uplink: SectorUplink | None,
    terrain_sigma: float,
    uplink_params: UplinkParams,
    params: ConfidenceParams,
) -> Confidence:
    """The confidence that a place gets ``need_mbps``.

    Parameters
    ----------
    need_mbps : float
        Rate the wanted class needs per stream, Mbps.
    radio_factor : float
        The place's share of the grid's rate (e.g. 1 / (PRB share x streams) for an event);
        0 without a usable link.
    backhaul_mbps : float
        The backhaul share per stream, Mbps (deterministic: short of ``need_mbps`` gives 0).
    rsrp_dbm : float or None
        RSRP of the serving cell (None: no link).
    uplink : SectorUplink or None
        The serving sector's constants; None when the sector is no longer in the registry
        (coverage older than an edit): the level is then ``borderline`` with unknown p.
    terrain_sigma : float
        `terrain_sigma_db` at the place, dB.
    """
    if rsrp_dbm is None or radio_factor <= 0.0 or backhaul_mbps < need_mbps:
        return Confidence(0.0, "unlikely")
    if uplink is None:
        return Confidence(None, "borderline")
    needed = required_sinr_db(
        need_mbps / radio_factor, uplink.bandwidth_hz, uplink.time_fraction, uplink_params
    )
    margin = rsrp_dbm + uplink.sinr_offset_db - needed
    sigma = math.hypot(uplink.location_sigma_db, terrain_sigma)
    p = p_meets(margin, sigma)
    return Confidence(
        round(p, 3),
        level(p, params),
        round(margin, 1) if math.isfinite(margin) else None,
        round(sigma, 1),
    )
