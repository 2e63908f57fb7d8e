"""Siting: candidate sites, who each would lift to a target service class, what it costs, and
which k of them to build for a budget.

Pure functions over a `Dem`, plain records and arrays; no Flask, no database. Coordinates are
in the DEM CRS (metres).

Pipeline
--------
1. `generate_candidates`: local high points of a smoothed DEM (ridge tops), ranked by local
   relief (a prominence proxy: height above the mean of the surrounding ``relief_window_m``),
   plus given points (commune centres, ...), inside the area and at least ``min_spacing_m``
   apart. Given points come first and always stay (if inside the area and spaced).
2. `candidate_gains`: for each candidate, the path loss to each *unserved* demand point
   (current class below the target) within the radius, the coverage map's loss of the
   point's analysis cell (`point_path_loss`: all `CandidateDesign` sectors share one antenna
   position; O(distance) per point instead of a whole coverage window), the TR 36.814 sector
   gain towards it, and the uplink rate from the link-budget functions, exactly as the
   mosaic forms it for a candidate's best sector (`registry.radio.coverage._mosaic_tile`):
   coupling gain = sector gain - loss - clutter margin, best sector = largest coupling gain
   (all sectors of the design have the same power per RE, so this is also the strongest
   RSRP). Simplifications, stated: the phone is assumed to attach to the candidate whenever
   that lifts it (the mosaic would attach it to the strongest DL server, possibly an
   existing site); the uplink interference margin is the planning constant of
   `UplinkParams`; the rate is capped by the candidate's backhaul share when a capacity is
   given. The result is a sparse candidate → lifted-demand matrix (`GainMatrix`) with
   population and seller weights.
3. `backhaul_options` / `site_costs`: site cost + the cheapest feasible backhaul: fibre
   extension to the nearest fibre node (straight distance x detour factor x cost per km, up
   to a maximum length; with a `RoadNetwork`, along the roads: the shortest road route to a
   fibre node plus the off-road stretches at both ends x detour factor), a microwave hop to
   a fibre-fed site in line of sight (with Fresnel clearance) within range, else satellite
   (capacity-limited).
4. `greedy_select` (lazy greedy on marginal gains; with a budget, the better of the
   gain/cost-ratio greedy and the plain greedy) and `ip_select` (the exact maximum-coverage
   integer program, solved by HiGHS, with its MIP gap). Both respect the budget, the number
   of sites and a minimum spacing between chosen sites (pairwise conflicts).

Costs are in millions of VND (``CostParams``); the defaults are planning placeholders, to
be replaced by the operator's price list.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import shapely
from affine import Affine
from numba import njit
from scipy import ndimage
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

from registry.radio.antenna import tilted_gain_dbi, view_angles, wrap_deg
from registry.radio.coverage import CoverageParams, SectorPatterns, SectorSpec, point_path_loss
from registry.radio.linkbudget import (
    LIVE_CLASSES,
    SERVICE_CLASSES,
    Technology,
    power_per_re_dbm,
    resource_blocks,
    subcarrier_spacing_khz,
    uplink_budget,
    uplink_rate_mbps,
)
from registry.terrain import EARTH_RADIUS_M, K_FACTOR, Dem, apply_transform, elevation_at

logger = logging.getLogger(__name__)

BackhaulKind = Literal["fibre", "microwave", "satellite"]
F64 = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Candidate:
    """A possible new site (DEM CRS)."""

    code: str
    x_m: float
    y_m: float
    ground_elevation_m: float
    relief_m: float  # height above the surrounding mean (prominence proxy); 0 for given points
    source: str  # "ridge" or "given"


@dataclass(frozen=True)
class DemandPoint:
    """A village or seller location with its weights and today's service class."""

    code: str
    x_m: float
    y_m: float
    population: float = 0.0
    sellers: float = 0.0
    current_class: str = "none"  # best class today (e.g. `readiness.place_classes(...)["any"]`)


@dataclass(frozen=True)
class CandidateDesign:
    """The default station put on every candidate (4G B3, three sectors)."""

    antenna_height_m: float = 30.0  # each sector's antenna above ground (a sector's height_m)
    technology: Technology = "4G"
    freq_mhz: float = 1842.5  # B3 downlink centre of a 20 MHz carrier
    bandwidth_mhz: float = 20.0
    azimuths_deg: tuple[float, ...] = (0.0, 120.0, 240.0)
    mech_tilt_deg: float = 0.0
    elec_tilt_deg: float = 2.0  # little downtilt: rural coverage site
    h_beamwidth_deg: float = 65.0
    v_beamwidth_deg: float = 7.0
    gain_dbi: float = 17.0
    tx_power_dbm: float = 46.0  # per 20 MHz carrier

    def sectors(self, candidate: Candidate) -> tuple[SectorSpec, ...]:
        """The design's sectors on a candidate, as radio-core input."""
        return tuple(
            SectorSpec(
                site_code=candidate.code,
                sector_code=f"{candidate.code}-{i + 1}",
                x_m=candidate.x_m,
                y_m=candidate.y_m,
                ground_elevation_m=candidate.ground_elevation_m,
                height_m=self.antenna_height_m,
                technology=self.technology,
                freq_mhz=self.freq_mhz,
                bandwidth_mhz=self.bandwidth_mhz,
                azimuth_deg=az,
                mech_tilt_deg=self.mech_tilt_deg,
                elec_tilt_deg=self.elec_tilt_deg,
                h_beamwidth_deg=self.h_beamwidth_deg,
                v_beamwidth_deg=self.v_beamwidth_deg,
                gain_dbi=self.gain_dbi,
                tx_power_dbm=self.tx_power_dbm,
            )
            for i, az in enumerate(self.azimuths_deg)
        )


@dataclass(frozen=True)
class GainParams:
    """What counts as a gain, and how demand is weighted."""

    target_class: str = "hd_live"  # a point gains when lifted to at least this class
    population_weight: float = 1.0  # objective weight of one resident
    seller_weight: float = 100.0  # one seller counts like 100 residents (planning choice)
    rsrp_floor_dbm: float = -120.0  # as `ReadinessParams.rsrp_floor_dbm`
    backhaul_share_for_streams: float = 0.5  # as `ReadinessParams.backhaul_share_for_streams`

    def __post_init__(self) -> None:
        if self.target_class not in LIVE_CLASSES:
            raise ValueError(f"target_class must be one of {', '.join(LIVE_CLASSES)}")


@dataclass(frozen=True, eq=False)
class GainMatrix:
    """Sparse candidate → demand coverage: which unserved points each candidate lifts.

    Attributes
    ----------
    candidates, demand : tuple
        The inputs, in order.
    covers : tuple of numpy.ndarray
        Per candidate, int64 sorted indices into `demand` it lifts to the target.
    rate_mbps : tuple of numpy.ndarray
        Per candidate, the uplink rate it gives at those points, Mbps.
    population, sellers, weight : numpy.ndarray
        Per demand point; weight = population_weight x population + seller_weight x sellers.
    """

    candidates: tuple[Candidate, ...]
    demand: tuple[DemandPoint, ...]
    covers: tuple[np.ndarray, ...]
    rate_mbps: tuple[np.ndarray, ...]
    population: np.ndarray
    sellers: np.ndarray
    weight: np.ndarray

    def gain(self, i: int) -> float:
        """Weight candidate ``i`` lifts on its own."""
        return float(self.weight[self.covers[i]].sum())

    def to_sparse(self) -> csr_matrix:
        """The matrix as a scipy CSR (candidates x demand, 1 where lifted)."""
        indptr = np.concatenate([[0], np.cumsum([c.size for c in self.covers])])
        indices = np.concatenate([*self.covers, np.zeros(0, np.int64)])
        return csr_matrix(
            (np.ones(indices.size), indices, indptr), shape=(len(self.candidates), len(self.demand))
        )


@dataclass(frozen=True)
class CostParams:
    """Prices (millions of VND) and backhaul limits. Defaults are planning placeholders."""

    site_cost: float = 1_500.0  # tower 30 m, power, 3-sector 4G radio, civil works
    fibre_cost_per_km: float = 120.0  # buried/aerial rural fibre, per route km
    fibre_detour_factor: float = 1.4  # route length / straight distance in mountains
    fibre_max_km: float = 25.0  # longer extensions are not planned
    fibre_capacity_mbps: float = 10_000.0
    microwave_cost: float = 300.0  # one hop: two radios, dishes, mounting
    microwave_max_km: float = 30.0
    microwave_capacity_mbps: float = 1_000.0
    microwave_freq_ghz: float = 15.0  # for the Fresnel clearance
    microwave_fresnel_clearance: float = 0.6  # share of the first Fresnel zone kept clear
    microwave_antenna_height_m: float = 30.0  # dish height above ground at both ends
    microwave_hubs_checked: int = 5  # nearest fibre-fed sites tried for line of sight
    satellite_cost: float = 200.0  # VSAT terminal and installation
    satellite_capacity_mbps: float = 50.0
    k_factor: float = K_FACTOR
    earth_radius_m: float = EARTH_RADIUS_M


@dataclass(frozen=True)
class Backhaul:
    """The chosen backhaul of a candidate and the site's total cost."""

    kind: BackhaulKind
    backhaul_cost: float
    total_cost: float
    capacity_mbps: float
    distance_m: float  # straight distance to the fibre node or hub; 0 for satellite
    to: str | None  # fibre node or hub site code


@dataclass(frozen=True)
class Hub:
    """A fibre node or a fibre-fed site (a microwave hub), DEM CRS."""

    code: str
    x_m: float
    y_m: float
    ground_elevation_m: float | None = None  # None: from the DEM


@dataclass(frozen=True)
class Selection:
    """Chosen sites and how good the choice is.

    Attributes
    ----------
    chosen : tuple of int
        Candidate indices, in greedy order (for the IP: its chosen set re-ordered greedily).
    marginal_gains : tuple of float
        Weight each chosen site adds to those before it (they sum to `objective`).
    objective : float
        Weight lifted by the chosen set.
    cost : float
        Total cost of the chosen sites.
    method : str
        "greedy" or "ip".
    mip_gap : float or None
        HiGHS's relative MIP gap (IP only); 0 when proven optimal.
    bound : float or None
        Best upper bound on the objective (IP only).
    status : str
        Solver status ("optimal", "time limit", ...; "greedy" for greedy).
    wall_s : float
        Wall time of the selection, seconds.
    """

    chosen: tuple[int, ...]
    marginal_gains: tuple[float, ...]
    objective: float
    cost: float
    method: str
    mip_gap: float | None = None
    bound: float | None = None
    status: str = "greedy"
    wall_s: float = 0.0


# --------------------------------------------------------------------------- candidates


def _area_geometry(area: BaseGeometry | Sequence[Sequence[float]]) -> BaseGeometry:
    geom = area if isinstance(area, BaseGeometry) else shapely.Polygon(area)
    if geom.is_empty or geom.area <= 0:
        raise ValueError("the area polygon is empty")
    shapely.prepare(geom)
    return geom


def _block_max(z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum of each k x k block (NaN-aware) and the fine row/col where it is."""
    rows, cols = z.shape[0] // k, z.shape[1] // k
    blocks = np.nan_to_num(z[: rows * k, : cols * k], nan=-np.inf)
    blocks = blocks.reshape(rows, k, cols, k).transpose(0, 2, 1, 3).reshape(rows, cols, k * k)
    arg = blocks.argmax(axis=2)
    zmax = np.take_along_axis(blocks, arg[..., None], axis=2)[..., 0]
    r = np.arange(rows)[:, None] * k + arg // k
    c = np.arange(cols)[None, :] * k + arg % k
    return zmax, r, c


class _SpacingIndex:
    """Points kept at least `spacing` apart (grid buckets of side `spacing`)."""

    def __init__(self, spacing: float) -> None:
        self.spacing = spacing
        self.buckets: dict[tuple[int, int], list[tuple[float, float]]] = {}

    def fits(self, x: float, y: float) -> bool:
        if self.spacing <= 0:
            return True
        bx, by = math.floor(x / self.spacing), math.floor(y / self.spacing)
        for i in (bx - 1, bx, bx + 1):
            for j in (by - 1, by, by + 1):
                for px, py in self.buckets.get((i, j), ()):
                    if math.hypot(px - x, py - y) < self.spacing:
                        return False
        return True

    def add(self, x: float, y: float) -> None:
        s = self.spacing if self.spacing > 0 else 1.0
        self.buckets.setdefault((math.floor(x / s), math.floor(y / s)), []).append((x, y))


def generate_candidates(
    dem: Dem,
    area_polygon_xy: BaseGeometry | Sequence[Sequence[float]],
    *,
    min_spacing_m: float,
    n_max: int,
    extra_points: Iterable[tuple[str, float, float]] = (),
    smooth_m: float = 150.0,
    relief_window_m: float = 3_000.0,
) -> list[Candidate]:
    """Candidate sites: ridge tops and local high points of the DEM, plus given points.

    Parameters
    ----------
    dem : Dem
        Terrain in a metric CRS.
    area_polygon_xy : shapely geometry or sequence of (x, y)
        Area the candidates must lie in, DEM CRS.
    min_spacing_m : float
        Minimum distance between any two candidates, metres.
    n_max : int
        Most candidates returned (given points included).
    extra_points : iterable of (code, x_m, y_m)
        Points always proposed first (e.g. commune centres) when inside the area and spaced.
    smooth_m : float
        Size of the smoothing filter before peak search, metres.
    relief_window_m : float
        Side of the window whose mean elevation the local relief is measured against, metres.

    Returns
    -------
    list of Candidate
        Given points first, then high points by decreasing local relief.
    """
    if n_max < 0 or min_spacing_m < 0:
        raise ValueError("n_max and min_spacing_m must not be negative")
    area = _area_geometry(area_polygon_xy)
    cell = min(dem.cell_size)
    spacing = _SpacingIndex(min_spacing_m)
    out: list[Candidate] = []
    for code, x, y in extra_points:
        if len(out) >= n_max:
            break
        if shapely.contains_xy(area, x, y) and spacing.fits(x, y):
            z = float(elevation_at(dem, np.array([x]), np.array([y]))[0])
            if math.isfinite(z):
                spacing.add(x, y)
                out.append(Candidate(code, float(x), float(y), z, 0.0, "given"))
    # Peaks on a coarse grid (block maxima) so a province DEM is cheap; a block is about a
    # quarter of the spacing, so a peak per spacing disc can still be found.
    k = max(1, int(max(min_spacing_m, smooth_m) / (4.0 * cell)))
    zmax, rr, cc = _block_max(dem.elevation_m, k)
    valid = np.isfinite(zmax)
    if not valid.any():
        return out
    filled = np.where(valid, zmax, np.nanmin(np.where(valid, zmax, np.nan)))
    smooth = ndimage.uniform_filter(filled, size=max(1, round(smooth_m / (k * cell))))
    peak_size = max(3, 2 * round(min_spacing_m / (2 * k * cell)) + 1)
    peaks = (smooth == ndimage.maximum_filter(smooth, size=peak_size, mode="nearest")) & valid
    relief = smooth - ndimage.uniform_filter(
        smooth, size=max(3, round(relief_window_m / (k * cell))), mode="nearest"
    )
    pr, pc = np.nonzero(peaks)
    order = np.argsort(-relief[pr, pc], kind="stable")
    xs, ys = apply_transform(dem.transform, cc[pr, pc] + 0.5, rr[pr, pc] + 0.5)
    xs, ys = xs[order], ys[order]
    inside = shapely.contains_xy(area, xs, ys)
    n = 0
    for j, i in enumerate(order):
        if len(out) >= n_max:
            break
        x, y = float(xs[j]), float(ys[j])
        if inside[j] and spacing.fits(x, y):
            spacing.add(x, y)
            n += 1
            out.append(
                Candidate(
                    f"C{n:04d}",
                    x,
                    y,
                    float(zmax[pr[i], pc[i]]),
                    float(relief[pr[i], pc[i]]),
                    "ridge",
                )
            )
    return out


# --------------------------------------------------------------------------- gains


@njit(cache=True, nogil=True)
def _best_coupling_gain(
    loss: F64,
    cx: F64,
    cy: F64,
    elev: F64,
    site_x: float,
    site_y: float,
    z_tx: float,
    rx_h: float,
    inv_2kr: float,
    az: F64,
    mtilt: F64,
    etilt: F64,
    hbw: F64,
    vbw: F64,
    gain: F64,
    ftb: float,
    slv: float,
) -> F64:  # pragma: no cover - numba
    """Per point: max over sectors of (sector gain - loss), as `_kernels.accumulate` forms it."""
    out = np.empty(loss.shape[0])
    cos_az, sin_az = np.cos(np.radians(az)), np.sin(np.radians(az))
    for p in range(loss.shape[0]):
        bearing, depression, un, ue = view_angles(
            cx[p] - site_x, cy[p] - site_y, z_tx - elev[p] - rx_h, inv_2kr
        )
        best = -np.inf
        for q in range(az.shape[0]):
            g = tilted_gain_dbi(
                wrap_deg(bearing - az[q]), un * cos_az[q] + ue * sin_az[q], depression,
                mtilt[q], etilt[q], hbw[q], vbw[q], gain[q], ftb, slv,
            )  # fmt: skip
            if g > best:
                best = g
        out[p] = best - loss[p]
    return out


def _target_mbps(params: CoverageParams, target: str) -> float:
    return float(getattr(params.thresholds, f"{target}_mbps"))


def candidate_gains(
    dem: Dem,
    candidates: Sequence[Candidate],
    demand: Sequence[DemandPoint],
    *,
    design: CandidateDesign | None = None,
    gain_params: GainParams | None = None,
    params: CoverageParams | None = None,
    backhaul_capacity_mbps: Sequence[float] | None = None,
    workers: int | None = None,
) -> GainMatrix:
    """Which unserved demand points each candidate lifts to the target class.

    Parameters
    ----------
    dem : Dem
    candidates : sequence of Candidate
    demand : sequence of DemandPoint
        Points whose `current_class` is already at or above the target never gain.
    design : CandidateDesign, optional
        Station put on each candidate.
    gain_params : GainParams, optional
        Target class, weights, RSRP floor, backhaul share.
    params : CoverageParams, optional
        Radio model (radius, analysis step, constants), as for `compute_coverage`.
    backhaul_capacity_mbps : sequence of float, optional
        Per candidate; caps the rate at capacity x backhaul share (e.g. satellite).
    workers : int, optional
        Threads over the candidates (default: CPU count).

    Returns
    -------
    GainMatrix
    """
    design = design or CandidateDesign()
    gp = gain_params or GainParams()
    p = params or CoverageParams()
    step = p.analysis_step
    target = SERVICE_CLASSES.index(gp.target_class)
    need = _target_mbps(p, gp.target_class)
    pop = np.array([d.population for d in demand], dtype=np.float64)
    sel = np.array([d.sellers for d in demand], dtype=np.float64)
    weight = gp.population_weight * pop + gp.seller_weight * sel
    unserved = np.array(
        [SERVICE_CLASSES.index(d.current_class) < target for d in demand], dtype=bool
    )
    if backhaul_capacity_mbps is not None and len(backhaul_capacity_mbps) != len(candidates):
        raise ValueError("one backhaul capacity per candidate")
    # Demand on the analysis grid: the cell containing each point, its centre and ground.
    grid = dem.transform @ Affine.scale(step)
    dx = np.array([d.x_m for d in demand], dtype=np.float64)
    dy = np.array([d.y_m for d in demand], dtype=np.float64)
    gc, gr = ~grid @ (dx, dy)
    gr, gc = np.floor(gr).astype(np.int64), np.floor(gc).astype(np.int64)
    rows, cols = dem.shape[0] // step, dem.shape[1] // step
    on_grid = (gr >= 0) & (gr < rows) & (gc >= 0) & (gc < cols)
    idx = np.nonzero(unserved & on_grid & (weight > 0))[0]
    half = step // 2
    elev = dem.elevation_m[half + gr[idx] * step, half + gc[idx] * step].astype(np.float64)
    cx, cy = grid @ (gc[idx] + 0.5, gr[idx] + 0.5)
    cx, cy = np.asarray(cx, dtype=np.float64), np.asarray(cy, dtype=np.float64)
    tree = cKDTree(np.column_stack([cx, cy])) if idx.size else None
    sec = design.sectors(candidates[0]) if candidates else ()
    patterns = SectorPatterns.of(sec)
    scs = subcarrier_spacing_khz(design.technology, p.radio)
    pre = power_per_re_dbm(
        design.tx_power_dbm, resource_blocks(design.technology, design.bandwidth_mhz, scs)
    )
    budget = uplink_budget(design.technology, design.bandwidth_mhz, p.radio, p.uplink)
    inv_2kr = 1.0 / (2.0 * p.k_factor * p.earth_radius_m)
    empty = np.zeros(0, np.int64)

    def one(i: int) -> tuple[np.ndarray, np.ndarray]:
        c = candidates[i]
        if tree is None:
            return empty, np.zeros(0)
        near = np.asarray(
            tree.query_ball_point((c.x_m, c.y_m), p.max_radius_m + step * max(dem.cell_size)),
            dtype=np.int64,
        )
        if near.size == 0:
            return empty, np.zeros(0)
        values = point_path_loss(
            dem,
            c.x_m,
            c.y_m,
            antenna_height_m=design.antenna_height_m,
            freq_mhz=design.freq_mhz,
            rows=gr[idx[near]],
            cols=gc[idx[near]],
            ground_elevation_m=c.ground_elevation_m,
            params=p,
        )
        ok = np.isfinite(values)
        near, values = near[ok], values[ok]
        cg = _best_coupling_gain(
            values,
            cx[near],
            cy[near],
            elev[near],
            c.x_m,
            c.y_m,
            c.ground_elevation_m + design.antenna_height_m,
            p.radio.ue_height_m,
            inv_2kr,
            *patterns,
            p.radio.front_to_back_db,
            p.radio.side_lobe_v_db,
        )
        cg = cg - p.clutter_margin_db
        rsrp = pre + cg + p.radio.ue_antenna_gain_dbi
        rate = uplink_rate_mbps(
            cg,
            ue_power_dbm=budget.ue_power_dbm,
            noise_dbm=budget.noise_dbm,
            bandwidth_hz=budget.bandwidth_hz,
            time_fraction=budget.time_fraction,
            radio=p.radio,
            uplink=p.uplink,
        )
        if backhaul_capacity_mbps is not None:
            rate = np.minimum(rate, backhaul_capacity_mbps[i] * gp.backhaul_share_for_streams)
        lifted = (rate >= need) & (rsrp >= gp.rsrp_floor_dbm)
        order = np.argsort(idx[near[lifted]])
        return idx[near[lifted]][order], rate[lifted][order]

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        results = list(pool.map(one, range(len(candidates))))
    return GainMatrix(
        tuple(candidates),
        tuple(demand),
        tuple(r[0] for r in results),
        tuple(r[1] for r in results),
        pop,
        sel,
        weight,
    )


# --------------------------------------------------------------------------- costs


def _microwave_clear(
    dem: Dem, a: tuple[float, float, float], b: tuple[float, float, float], cost: CostParams
) -> bool:
    """Line of sight between two antennas (x, y, absolute height) with Fresnel clearance.

    The path is sampled as `terrain.terrain_profile` samples it (at most one cell apart,
    bilinear, earth bulge with k R).
    """
    length = math.hypot(b[0] - a[0], b[1] - a[1])
    n = max(2, math.ceil(length / min(dem.cell_size)) + 1)
    if n < 3:
        return True
    d = np.linspace(0.0, length, n)[1:-1]
    frac = d / length
    ground = elevation_at(dem, a[0] + frac * (b[0] - a[0]), a[1] + frac * (b[1] - a[1]))
    if not np.all(np.isfinite(ground)):
        return False
    line = a[2] + (b[2] - a[2]) * frac
    wavelength = 0.299792458 / cost.microwave_freq_ghz
    fresnel = np.sqrt(wavelength * d * (length - d) / length)
    bulge = d * (length - d) / (2.0 * cost.k_factor * cost.earth_radius_m)
    return bool(np.all(ground + bulge + cost.microwave_fresnel_clearance * fresnel <= line))


#: Road vertices closer than this are one junction (OSM ways share their junction nodes).
ROAD_SNAP_M = 1.0


@dataclass(frozen=True)
class RoadNetwork:
    """Fibre routes along roads: for every road vertex, the length of the shortest route to a
    fibre node (along the roads, then off-road to the node) and which node it reaches."""

    xy: F64  # (n, 2) road vertices, DEM CRS
    route_m: F64  # shortest route from each vertex to a fibre node; inf when none is reachable
    node: npt.NDArray[np.intp]  # index into the fibre nodes of that route's end; -1 when none
    tree: cKDTree


def road_network(
    roads: Iterable[BaseGeometry], fibre_nodes: Sequence[Hub], cost: CostParams | None = None
) -> RoadNetwork:
    """The road graph (lines in the DEM CRS; vertices within `ROAD_SNAP_M` are joined) and the
    shortest route from each vertex to its nearest fibre node, by Dijkstra from all nodes at
    once. A node joins the graph at its nearest vertex, by an off-road stretch x detour factor.
    """
    c = cost or CostParams()
    chunks = [
        np.asarray(part.coords)[:, :2]
        for line in roads
        for part in getattr(line, "geoms", [line])
        if not part.is_empty
    ]
    if not chunks or not fibre_nodes:
        raise ValueError("a road network needs roads and fibre nodes")
    coords = np.vstack(chunks)
    keys, inverse = np.unique(np.round(coords / ROAD_SNAP_M), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    xy = np.zeros((len(keys), 2))
    xy[inverse] = coords
    ends = np.cumsum([len(chunk) for chunk in chunks])
    a = np.delete(inverse[:-1], ends[:-1] - 1)  # consecutive vertices of the same line
    b = np.delete(inverse[1:], ends[:-1] - 1)
    tree = cKDTree(xy)
    node_xy = np.array([(n.x_m, n.y_m) for n in fibre_nodes])
    offset_m, joint = tree.query(node_xy)
    n, k = len(xy), len(fibre_nodes)
    rows = np.concatenate([a, np.arange(n, n + k)])
    cols = np.concatenate([b, joint])
    weights = np.concatenate(
        [np.hypot(*(xy[a] - xy[b]).T), np.maximum(offset_m, 1e-3) * c.fibre_detour_factor]
    )
    keep = rows != cols
    graph = coo_matrix((weights[keep], (rows[keep], cols[keep])), shape=(n + k, n + k)).tocsr()
    route, _, sources = dijkstra(
        graph, directed=False, indices=np.arange(n, n + k), min_only=True, return_predecessors=True
    )
    node = np.where(sources[:n] >= 0, sources[:n] - n, -1)
    return RoadNetwork(xy=xy, route_m=route[:n], node=node, tree=tree)


def backhaul_options(
    dem: Dem,
    candidate: Candidate,
    *,
    fibre_nodes: Sequence[Hub],
    fibre_fed_sites: Sequence[Hub] = (),
    cost: CostParams | None = None,
    roads: RoadNetwork | None = None,
) -> dict[BackhaulKind, Backhaul]:
    """Every feasible backhaul of a candidate with its cost (satellite is always feasible).

    Fibre: the nearest fibre node, straight distance x detour factor x cost per km, when the
    route is at most `CostParams.fibre_max_km`; with ``roads`` (built over the same fibre
    nodes), the route goes off-road (x detour factor) to the nearest road vertex and along the
    roads to the node nearest by road, when one is reachable. Microwave: the nearest of the
    `microwave_hubs_checked` fibre-fed sites within `microwave_max_km` whose path keeps the
    Fresnel clearance (dishes `microwave_antenna_height_m` above ground at both ends).
    """
    c = cost or CostParams()
    out: dict[BackhaulKind, Backhaul] = {
        "satellite": Backhaul(
            "satellite",
            c.satellite_cost,
            c.site_cost + c.satellite_cost,
            c.satellite_capacity_mbps,
            0.0,
            None,
        )
    }
    if fibre_nodes:
        d = [math.hypot(n.x_m - candidate.x_m, n.y_m - candidate.y_m) for n in fibre_nodes]
        j = int(np.argmin(d))
        route_km = d[j] * c.fibre_detour_factor / 1_000.0
        if roads is not None:
            access_m, v = roads.tree.query((candidate.x_m, candidate.y_m))
            if roads.node[v] >= 0:
                j = int(roads.node[v])
                route_km = (access_m * c.fibre_detour_factor + roads.route_m[v]) / 1_000.0
        if route_km <= c.fibre_max_km:
            price = route_km * c.fibre_cost_per_km
            out["fibre"] = Backhaul(
                "fibre",
                price,
                c.site_cost + price,
                c.fibre_capacity_mbps,
                d[j],
                fibre_nodes[j].code,
            )
    hubs = sorted(
        ((math.hypot(h.x_m - candidate.x_m, h.y_m - candidate.y_m), h) for h in fibre_fed_sites),
        key=lambda t: t[0],
    )
    a = (candidate.x_m, candidate.y_m, candidate.ground_elevation_m + c.microwave_antenna_height_m)
    for dist, hub in hubs[: c.microwave_hubs_checked]:
        if dist > c.microwave_max_km * 1_000.0:
            break
        ground = (
            hub.ground_elevation_m
            if hub.ground_elevation_m is not None
            else float(elevation_at(dem, np.array([hub.x_m]), np.array([hub.y_m]))[0])
        )
        if _microwave_clear(dem, a, (hub.x_m, hub.y_m, ground + c.microwave_antenna_height_m), c):
            out["microwave"] = Backhaul(
                "microwave",
                c.microwave_cost,
                c.site_cost + c.microwave_cost,
                c.microwave_capacity_mbps,
                dist,
                hub.code,
            )
            break
    return out


def cheapest_backhaul(options: dict[BackhaulKind, Backhaul]) -> Backhaul:
    """Fibre or microwave, whichever is cheaper; satellite only when neither is feasible
    (its capacity limits the site)."""
    terrestrial = [o for k, o in options.items() if k != "satellite"]
    return min(terrestrial, key=lambda o: o.total_cost) if terrestrial else options["satellite"]


def site_costs(
    dem: Dem,
    candidates: Sequence[Candidate],
    *,
    fibre_nodes: Sequence[Hub],
    fibre_fed_sites: Sequence[Hub] = (),
    cost: CostParams | None = None,
    roads: RoadNetwork | None = None,
) -> list[Backhaul]:
    """`cheapest_backhaul` of every candidate (site cost included in `total_cost`)."""
    return [
        cheapest_backhaul(
            backhaul_options(
                dem,
                cand,
                fibre_nodes=fibre_nodes,
                fibre_fed_sites=fibre_fed_sites,
                cost=cost,
                roads=roads,
            )
        )
        for cand in candidates
    ]


# --------------------------------------------------------------------------- selection


def spacing_conflicts(xy: np.ndarray, min_spacing_m: float) -> list[tuple[int, int]]:
    """Pairs of candidates (i < j) closer than the minimum spacing.

    >>> spacing_conflicts(np.array([[0.0, 0.0], [500.0, 0.0], [5000.0, 0.0]]), 1000.0)
    [(0, 1)]
    """
    if min_spacing_m <= 0 or len(xy) < 2:
        return []
    pairs = cKDTree(np.asarray(xy, dtype=np.float64)).query_pairs(np.nextafter(min_spacing_m, 0.0))
    return sorted(pairs)


def _check_selection_inputs(
    n: int, costs: Sequence[float] | None, budget: float | None, max_sites: int | None
) -> np.ndarray:
    c = np.ones(n) if costs is None else np.asarray(costs, dtype=np.float64)
    if c.shape != (n,) or np.any(c < 0):
        raise ValueError("one non-negative cost per candidate")
    if budget is None and max_sites is None:
        raise ValueError("give a budget, a number of sites, or both")
    return c


def _xy(matrix: GainMatrix) -> np.ndarray:
    return np.array([[c.x_m, c.y_m] for c in matrix.candidates], dtype=np.float64).reshape(-1, 2)


def _greedy_run(
    covers: Sequence[np.ndarray],
    weight: np.ndarray,
    costs: np.ndarray,
    budget: float,
    max_sites: int,
    conflicts: dict[int, set[int]],
    ratio: bool,
    allowed: Iterable[int] | None = None,
) -> tuple[list[int], list[float]]:
    covered = np.zeros(weight.size, dtype=bool)
    heap = []
    for i in range(len(covers)) if allowed is None else allowed:
        g = float(weight[covers[i]].sum())
        if g > 0 and costs[i] <= budget:
            key = g / costs[i] if ratio and costs[i] > 0 else (math.inf if ratio else g)
            heap.append((-key, -g, i))
    heapq.heapify(heap)
    chosen: list[int] = []
    gains: list[float] = []
    blocked: set[int] = set()
    spent = 0.0
    while heap and len(chosen) < max_sites:
        _, _, i = heapq.heappop(heap)
        if i in blocked or spent + costs[i] > budget * (1 + 1e-12):
            continue
        cov = covers[i]
        g = float(weight[cov[~covered[cov]]].sum())
        if g <= 0:
            continue
        key = g / costs[i] if ratio and costs[i] > 0 else (math.inf if ratio else g)
        if heap and -heap[0][0] > key:  # stale: another may be better now
            heapq.heappush(heap, (-key, -g, i))
            continue
        chosen.append(i)
        gains.append(g)
        covered[cov] = True
        spent += costs[i]
        blocked |= conflicts.get(i, set())
    return chosen, gains


def _conflict_map(pairs: Iterable[tuple[int, int]]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for a, b in pairs:
        out.setdefault(a, set()).add(b)
        out.setdefault(b, set()).add(a)
    return out


def greedy_select(
    matrix: GainMatrix,
    *,
    costs: Sequence[float] | None = None,
    budget: float | None = None,
    max_sites: int | None = None,
    min_spacing_m: float = 0.0,
) -> Selection:
    """Lazy greedy maximum coverage under a budget, a number of sites and a spacing.

    Marginal gains are re-evaluated only when a candidate reaches the top of the heap
    (submodularity makes stale gains upper bounds). With a budget and unequal costs it runs
    both the gain/cost-ratio greedy and the plain greedy and returns the better (the
    classic guard against one expensive, very good site). With a number of sites only, the
    result is within (1 - 1/e) of the optimum when there is no spacing constraint.

    Parameters
    ----------
    matrix : GainMatrix
    costs : sequence of float, optional
        Per candidate (e.g. `Backhaul.total_cost`); default 1 each.
    budget : float, optional
        Most total cost.
    max_sites : int, optional
        Most sites chosen.
    min_spacing_m : float
        Chosen sites are at least this far apart, metres.

    Returns
    -------
    Selection
    """
    t0 = time.perf_counter()
    c = _check_selection_inputs(len(matrix.candidates), costs, budget, max_sites)
    b = math.inf if budget is None else float(budget)
    k = len(c) if max_sites is None else int(max_sites)
    conflicts = _conflict_map(spacing_conflicts(_xy(matrix), min_spacing_m))
    runs = [_greedy_run(matrix.covers, matrix.weight, c, b, k, conflicts, ratio=False)]
    if budget is not None and np.ptp(c) > 0:
        runs.append(_greedy_run(matrix.covers, matrix.weight, c, b, k, conflicts, ratio=True))
    chosen, gains = max(runs, key=lambda r: sum(r[1]))
    return Selection(
        tuple(chosen),
        tuple(gains),
        float(sum(gains)),
        float(c[chosen].sum()),
        "greedy",
        wall_s=time.perf_counter() - t0,
    )


def ip_select(
    matrix: GainMatrix,
    *,
    costs: Sequence[float] | None = None,
    budget: float | None = None,
    max_sites: int | None = None,
    min_spacing_m: float = 0.0,
    time_limit_s: float = 120.0,
    mip_rel_gap: float = 1e-4,
    threads: int | None = None,
) -> Selection:
    """The exact maximum-coverage integer program, solved by HiGHS.

    max sum_j w_j y_j  s.t.  y_j <= sum_{i covers j} x_i,  sum_i c_i x_i <= budget,
    sum_i x_i <= max_sites,  x_a + x_b <= 1 for every pair closer than the spacing,
    x binary, 0 <= y <= 1. Demand points lifted by the same set of candidates are merged
    (weights added) first; candidates that lift nothing are left out. The greedy answer is
    given to HiGHS as a starting solution.

    Parameters
    ----------
    matrix, costs, budget, max_sites, min_spacing_m
        As in `greedy_select`.
    time_limit_s : float
        HiGHS time limit, seconds; on hitting it the best solution found is returned with
        its gap.
    mip_rel_gap : float
        Relative gap at which HiGHS stops.
    threads : int, optional
        HiGHS threads (default: HiGHS's choice).

    Returns
    -------
    Selection
        With `mip_gap` and `bound` from HiGHS; `chosen` re-ordered greedily so that
        `marginal_gains` are each site's gain over the sites before it.
    """
    import highspy

    t0 = time.perf_counter()
    c = _check_selection_inputs(len(matrix.candidates), costs, budget, max_sites)
    b = math.inf if budget is None else float(budget)
    k = len(c) if max_sites is None else int(max_sites)
    pairs = spacing_conflicts(_xy(matrix), min_spacing_m)
    conflicts = _conflict_map(pairs)
    useful = [
        i
        for i, cov in enumerate(matrix.covers)
        if cov.size and matrix.weight[cov].sum() > 0 and c[i] <= b
    ]
    col = {i: n for n, i in enumerate(useful)}
    groups: dict[tuple[int, ...], float] = {}
    by_point: dict[int, list[int]] = {}
    for i in useful:
        for j in matrix.covers[i].tolist():
            by_point.setdefault(j, []).append(col[i])
    for j, cands in by_point.items():
        key = tuple(cands)
        groups[key] = groups.get(key, 0.0) + float(matrix.weight[j])
    nx_, ny = len(useful), len(groups)
    inf = highspy.kHighsInf
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    h.addVars(nx_ + ny, np.zeros(nx_ + ny), np.ones(nx_ + ny))
    h.changeColsIntegrality(
        nx_, np.arange(nx_, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * nx_)
    )
    weights = np.array(list(groups.values()), dtype=np.float64)
    h.changeColsCost(ny, np.arange(nx_, nx_ + ny, dtype=np.int32), weights)
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    starts: list[int] = []
    index: list[int] = []
    value: list[float] = []
    for g, members in enumerate(groups):  # y_g - sum x_i <= 0
        starts.append(len(index))
        index += [nx_ + g, *members]
        value += [1.0, *([-1.0] * len(members))]
    lower, upper = [-inf] * ny, [0.0] * ny
    if math.isfinite(b):
        starts.append(len(index))
        index += list(range(nx_))
        value += c[useful].tolist()
        lower.append(-inf)
        upper.append(b)
    if k < nx_:
        starts.append(len(index))
        index += list(range(nx_))
        value += [1.0] * nx_
        lower.append(-inf)
        upper.append(float(k))
    for a, bb in pairs:
        if a in col and bb in col:
            starts.append(len(index))
            index += [col[a], col[bb]]
            value += [1.0, 1.0]
            lower.append(-inf)
            upper.append(1.0)
    if starts:
        h.addRows(
            len(starts),
            np.array(lower),
            np.array(upper),
            len(index),
            np.array(starts, dtype=np.int32),
            np.array(index, dtype=np.int32),
            np.array(value, dtype=np.float64),
        )
    greedy = _greedy_run(matrix.covers, matrix.weight, c, b, k, conflicts, ratio=False)[0]
    if greedy and nx_:
        start = np.zeros(nx_ + ny)
        start[[col[i] for i in greedy]] = 1.0
        chosen_cols = set(start[:nx_].nonzero()[0].tolist())
        for g, members in enumerate(groups):
            start[nx_ + g] = float(any(x in chosen_cols for x in members))
        sol = highspy.HighsSolution()
        sol.col_value = start.tolist()
        sol.value_valid = True
        h.setSolution(sol)
    if nx_:
        h.run()
        info = h.getInfo()
        status = h.modelStatusToString(h.getModelStatus()).lower()
        x = np.asarray(h.getSolution().col_value[:nx_])
        picked = [useful[n] for n in np.nonzero(x > 0.5)[0]]
        gap, bound = float(info.mip_gap), float(info.mip_dual_bound)
    else:
        status, picked, gap, bound = "optimal", [], 0.0, 0.0
    # Re-order the chosen set greedily to report each site's marginal gain.
    order, gains = _greedy_run(
        matrix.covers,
        matrix.weight,
        np.zeros(len(c)),
        math.inf,
        len(picked),
        {},
        ratio=False,
        allowed=picked,
    )
    order += [i for i in picked if i not in order]  # zero-gain picks, if any
    gains += [0.0] * (len(order) - len(gains))
    return Selection(
        tuple(order),
        tuple(gains),
        float(sum(gains)),
        float(c[order].sum()),
        "ip",
        mip_gap=gap,
        bound=bound,
        status=status,
        wall_s=time.perf_counter() - t0,
    )


def covered_weight(matrix: GainMatrix, chosen: Iterable[int]) -> float:
    """Weight lifted by a set of candidates together."""
    cov = [matrix.covers[i] for i in chosen]
    if not cov:
        return 0.0
    return float(matrix.weight[np.unique(np.concatenate(cov))].sum())


__all__ = [
    "Backhaul",
    "Candidate",
    "CandidateDesign",
    "CostParams",
    "DemandPoint",
    "GainMatrix",
    "GainParams",
    "Hub",
    "RoadNetwork",
    "Selection",
    "backhaul_options",
    "candidate_gains",
    "cheapest_backhaul",
    "covered_weight",
    "generate_candidates",
    "greedy_select",
    "ip_select",
    "road_network",
    "site_costs",
    "spacing_conflicts",
]
