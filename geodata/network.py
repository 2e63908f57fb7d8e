"""Synthetic mobile network for the Lai Châu demo: sites, sectors and fibre.

Sites are placed the way operators roll out rural coverage: a site at each commune admin
centre and a few in each town, then, village by village from the largest down, a site for
each village the operator's sites do not reach yet, on the candidate (a hill top near the
village, or beside it on its access road) that reaches the most people not yet served. Reach
is judged with the registry's own path-loss model (free space + Deygout over the DEM, the
same one `flask coverage compute` uses) on straight profiles to the villages. The leading
operator builds until it reaches every village it can; the others build their share of the
province's published BTS count, largest villages first. A fibre backbone follows the national
roads between towns (waypoints at real towns and commune centres, nudged towards valley
floors using the DEM); sites near it are fibre-fed by a spur, the rest use microwave or,
where remote, satellite, which is where livestream gaps remain.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from rasterio.crs import CRS

from geodata.dem import UTM_CRS, Dem
from geodata.land import WGS84, Land, points_frame, rng_for, spaced_pick, to_lonlat
from geodata.names import place_core
from registry import terrain
from registry.radio.coverage.losses import point_path_loss
from registry.radio.coverage.types import CoverageParams

logger = logging.getLogger(__name__)

# Operators by MCC-MNC: code prefix and share of the sites the followers build (Viettel, the
# leader, builds out to every village it can reach: it carries the universal-service load).
OPERATORS = {"452-04": ("VTL", 0.45), "452-02": ("VNP", 0.30), "452-01": ("MBF", 0.25)}
LEADER = "452-04"
# Site count from the published figure: Lai Châu reported 2,021 BTS units (July 2025).
# Vietnamese statistics count a "trạm BTS" per technology per site (a 2G/3G unit, a 4G
# eNodeB, a 5G gNodeB), so BTS units = sites x (1 + LEGACY_UNITS_PER_SITE) + 5G sites.
# The demo models 4G and 5G; each site is assumed to keep one 2G/3G unit (voice and older
# phones; 2G-only phones were cut off in Sept 2024, 3G still runs).
BTS_UNITS_REPORTED = 2_021
LEGACY_UNITS_PER_SITE = 1
TOWN_SITES = {"Lai Châu": 4}  # sites per operator in a town; the provincial city has more
DEFAULT_TOWN_SITES = 2
TOWN_RADIUS_M = 2_000.0  # town sites spread over the built-up area
TOWN_SITE_SPACING_M = 500.0
CENTRE_OFFSET_M = (150.0, 500.0)  # the 2nd/3rd operator's tower stands apart from the 1st
RIDGE_SEARCH_M = (1_000.0, 2_500.0)  # hill-top candidates: the highest of RIDGE_TRIES points
RIDGE_TRIES = 16  # within each of these distances of a village
NEAR_VILLAGE_M = (150.0, 500.0)  # the roadside candidate sits just outside the houses
# Reach while siting: a village counts as reached by a site when the path loss (the registry's
# free space + Deygout over the DEM, straight profile) is at most SERVED_LOSS_DB. Planning value:
# ~10 dB inside the loss where the demo's uplink budget ends (~130 dB for a 4G phone on B3
# with the 90 % location margin), to leave room for sector pattern and tilt.
SERVED_LOSS_DB = 120.0
REACH_M = 12_000.0  # profiles this long at most: free space alone is 119 dB at 12 km on B3
SITING_FREQ_MHZ = 1842.5  # B3, the band most sites carry (B28 reaches further: conservative)
SITING_ANTENNA_M = 28.0  # antenna height above ground assumed while siting (towers 30-60 m)
ACCESS_BONUS = 1.5  # beside a village there is a road and mains power: gain counts 1.5x
SITE_SPACING_M = 500.0  # an operator's rural sites keep this far apart
TOWER_HEIGHT_M = {"town": (15.0, 30.0), "centre": (30.0, 45.0), "rural": (30.0, 60.0)}
PLANNED_FIBRE, PLANNED_WIRELESS, DOWN = 2, 4, 4  # non-active rural sites

# 5G n41 (three extra sectors) at towns, at the centres of these urban communes and
# everywhere in Bình Lư (the 4 Nov 2025 livestream ran over 5G there).
URBAN_5G_COMMUNES = ("Tân Phong", "Đoàn Kết", "Than Uyên", "Tân Uyên")
ALL_5G_COMMUNE = "Bình Lư"

# Fibre: national roads as waypoint sequences; "c:" = a commune's admin centre,
# "t:" = a GeoNames town. The core node is in Lai Châu city.
CORE = "t:Lai Châu"
ROADS = {
    "QL4D": (
        "c:Bình Lư", "t:Tam Đường", "c:Tân Phong", "t:Lai Châu", "c:Đoàn Kết",
        "t:Phong Thổ", "c:Phong Thổ", "c:Pa Tần",
    ),
    "QL32": ("t:Than Uyên", "c:Tân Uyên", "c:Bản Bo", "c:Bình Lư"),
    "QL12": ("c:Pa Tần", "c:Lê Lợi", "c:Nậm Hàng"),
    "QL4H": ("c:Nậm Hàng", "c:Mường Mô", "c:Bum Tở", "t:Mường Tè", "c:Mường Tè"),
}  # fmt: skip
ROAD_CAPACITY_MBPS = {"QL4D": 100_000.0, "QL32": 40_000.0, "QL12": 40_000.0, "QL4H": 10_000.0}
FEEDER_CAPACITY_MBPS = 10_000.0  # a town off those roads is fed from the nearest node
ROAD_STEP_M = 1_000.0  # road vertices every km ...
ROAD_WIGGLE_M = 1_500.0  # ... shifted up to this far sideways, to the lowest ground
SPLICE_EVERY = 4  # a splice closure every 4 road vertices (~4 km)
FIBRE_REACH_M = 5_000.0  # sites this near a backbone node get a fibre spur
CO_LOCATED_M = 100.0  # a site this near a backbone node hangs off it directly
MICROWAVE_HOP_M = 15_000.0  # longest microwave hop
MICROWAVE_MAX_HOPS = 2  # hops (via relay sites) from a fibre-fed site; farther: satellite
FIBRE_MBPS = (1_000.0, 2_500.0)  # 10,000 for 5G sites
MICROWAVE_MBPS = (155.0, 311.0, 622.0, 1_000.0)
SATELLITE_MBPS = (20.0, 50.0, 100.0)


@dataclass(frozen=True)
class Band:
    """Radio parameters of one band; ranges are (low, high) for uniform draws."""

    tag: str  # in sector codes: L18 = LTE 1,800 MHz, L07 = LTE 700, N26 = NR 2,600
    technology: str
    freq_mhz: float  # downlink centre frequency
    bandwidths_mhz: tuple[float, ...]  # 3GPP channel sizes, drawn uniformly (repeats weigh)
    v_beamwidth_deg: float  # a panel of given length has a wider beam at lower frequency
    gain_dbi: tuple[float, float]
    tx_power_dbm: tuple[float, float]  # per carrier: 20-40 W for 4G, 80-200 W for 5G


BANDS = {
    "B3": Band("L18", "4G", 1842.5, (20.0, 20.0, 15.0, 10.0), 7.0, (17.0, 18.0), (43.0, 46.0)),
    "B28": Band("L07", "4G", 780.5, (10.0,), 10.0, (15.0, 16.0), (43.0, 46.0)),
    "n41": Band("N26", "5G", 2595.0, (100.0,), 7.0, (16.0, 18.0), (49.0, 53.0)),
}
B28_SHARE = 0.3  # Viettel rural sites on its 700 MHz block instead of 1,800 MHz
H_BEAMWIDTH_DEG = 65.0  # standard 3-sector panel
AZIMUTH_JITTER_DEG = 10.0  # each panel turned up to ±10° off the 120° pattern (terrain)
ANTENNA_BELOW_TOP_M = (1.0, 5.0)


@dataclass
class Network:
    """The synthetic network layers (columns as documented in geodata.build)."""

    sites: gpd.GeoDataFrame
    sectors: pd.DataFrame
    fibre_nodes: gpd.GeoDataFrame
    fibre_links: gpd.GeoDataFrame


def build_network(land: Land, dem: Dem, villages: pd.DataFrame, seed: int) -> Network:
    """Sites, sectors and the fibre network serving the villages.

    Parameters
    ----------
    land : the real communes and towns.
    dem : the synthetic terrain.
    villages : code, name, commune_code, population and x, y (UTM metres) per village.
    seed : seed of the named random streams.
    """
    sites = _place_sites(land, dem, villages, seed)
    rng = rng_for(seed, "site-attributes")
    number = sites.groupby("operator").cumcount() + 1
    prefix = sites["operator"].map(lambda op: OPERATORS[op][0])
    sites["code"] = prefix + "-" + number.map("{:04d}".format)
    sites["five_g"] = _five_g(land, sites)
    low, high = np.array([TOWER_HEIGHT_M[k] for k in sites["kind"]]).T
    sites["tower_height_m"] = np.round(rng.uniform(low, high) * 2) / 2
    sites["ground_elevation_m"] = np.round(dem.sample(sites["x"], sites["y"]), 1)
    fibre = _backbone(land, dem)
    sites = _backhaul(dem, sites, fibre, rng)
    columns = [
        "code", "name", "operator", "commune_code", "tower_height_m", "ground_elevation_m",
        "status", "backhaul_kind", "backhaul_capacity_mbps", "fibre_node_code",
    ]  # fmt: skip
    nodes = pd.DataFrame(fibre.nodes)
    return Network(
        sites=points_frame(sites[columns].assign(synthetic=True), sites["x"], sites["y"]),
        sectors=_sectors(sites, rng_for(seed, "sectors")),
        fibre_nodes=points_frame(
            nodes[["code", "name", "kind"]].assign(synthetic=True), nodes["x"], nodes["y"]
        ),
        fibre_links=_links_frame(fibre),
    )


def _xy(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return frame["x"].to_numpy(), frame["y"].to_numpy()


def _distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Matrix of distances (m) from each point of a to each point of b."""
    return np.hypot(a[0][:, None] - b[0][None, :], a[1][:, None] - b[1][None, :])


class Reach:
    """Which villages a site at a point reaches (path loss <= SERVED_LOSS_DB), with the
    registry's own path-loss model on the demo DEM."""

    def __init__(self, dem: Dem, villages: pd.DataFrame) -> None:
        self.dem = terrain.Dem(dem.heights, dem.transform, CRS.from_string(UTM_CRS))
        self.params = CoverageParams(max_radius_m=REACH_M)
        self.x, self.y = _xy(villages)
        row, col = self.dem.cell_index(self.x, self.y)
        self.rows = np.clip(np.round(row), 0, self.dem.shape[0] - 1).astype(np.int64)
        self.cols = np.clip(np.round(col), 0, self.dem.shape[1] - 1).astype(np.int64)

    def villages(self, x: float, y: float) -> np.ndarray:
        """Indices of the villages reached from (x, y) (UTM metres)."""
        near = np.flatnonzero(np.hypot(self.x - x, self.y - y) <= REACH_M)
        if near.size == 0:
            return near
        loss = point_path_loss(
            self.dem,
            x,
            y,
            antenna_height_m=SITING_ANTENNA_M,
            freq_mhz=SITING_FREQ_MHZ,
            rows=self.rows[near],
            cols=self.cols[near],
            params=self.params,
        )
        hit: np.ndarray = near[np.nan_to_num(loss, nan=np.inf) <= SERVED_LOSS_DB]
        return hit


def _place_sites(land: Land, dem: Dem, villages: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Site positions per operator: fixed ones, then one per village not yet reached.

    Villages are taken from the largest down; for each one the operator's sites do not
    reach, the candidate near it that reaches it and the most people not yet reached
    (roadside candidates count ACCESS_BONUS more) becomes a site, SITE_SPACING_M from the
    operator's others. The leader goes through every village; the followers stop at their
    share of the sites left by the BTS count, and take the villages nobody reaches first.
    """
    reach = Reach(dem, villages)
    order = np.argsort(-villages["population"].to_numpy(), kind="stable")
    anyone = np.zeros(len(villages), dtype=bool)  # villages some operator reaches
    frames = {}
    leader = _operator_sites(
        land, dem, villages, reach, order, LEADER, seed, budget=None, anyone=anyone
    )
    frames[LEADER] = leader
    five_g_share = _five_g(land, leader).mean()
    total = round(BTS_UNITS_REPORTED / (1 + LEGACY_UNITS_PER_SITE + five_g_share))
    followers = {op: share for op, (_, share) in OPERATORS.items() if op != LEADER}
    left = max(total - len(leader), 0)
    for operator, share in followers.items():
        budget = round(left * share / sum(followers.values()))
        # Villages nobody reaches first (the state's programme against "lõm sóng", signal
        # holes, hands them to every operator), then the largest.
        first = np.concatenate([order[~anyone[order]], order[anyone[order]]])
        frames[operator] = _operator_sites(
            land, dem, villages, reach, first, operator, seed, budget=budget, anyone=anyone
        )
    return pd.concat([frames[op] for op in OPERATORS], ignore_index=True)


def _operator_sites(
    land: Land,
    dem: Dem,
    villages: pd.DataFrame,
    reach: Reach,
    order: np.ndarray,
    operator: str,
    seed: int,
    *,
    budget: int | None,
    anyone: np.ndarray,
) -> pd.DataFrame:
    """One operator's sites, villages taken in ``order`` (``budget`` = total sites, None =
    until every village is tried); marks the villages it reaches in ``anyone``."""
    rng = rng_for(seed, f"sites-{operator}")
    fixed = _fixed_sites(land, operator, rng)
    reached = np.zeros(len(villages), dtype=bool)
    for x, y in zip(*_xy(fixed), strict=True):
        reached[reach.villages(x, y)] = True
    candidates = _rural_candidates(land, dem, villages, rng)
    cx, cy = _xy(candidates)
    by_village = candidates.groupby("village").indices
    people = villages["population"].to_numpy(np.float64)
    taken_x, taken_y = list(fixed["x"]), list(fixed["y"])
    chosen: list[int] = []
    for v in order:
        if budget is not None and len(fixed) + len(chosen) >= budget:
            break
        if reached[v]:
            continue
        best, best_gain, best_hits = -1, 0.0, np.empty(0, dtype=np.int64)
        for i in by_village.get(v, ()):
            spacing = np.hypot(np.subtract(taken_x, cx[i]), np.subtract(taken_y, cy[i]))
            if spacing.size and spacing.min() < SITE_SPACING_M:
                continue
            hits = reach.villages(cx[i], cy[i])
            if v not in hits:
                continue
            gain = people[hits[~reached[hits]]].sum()
            gain *= ACCESS_BONUS if candidates["beside_village"].iat[i] else 1.0
            if gain > best_gain:
                best, best_gain, best_hits = i, gain, hits
        if best < 0:
            continue  # no candidate reaches this village: a gap the registry will show
        chosen.append(best)
        reached[best_hits] = True
        taken_x.append(cx[best])
        taken_y.append(cy[best])
    anyone |= reached
    rural = candidates.iloc[chosen]
    aim = rural["village"].to_numpy()
    rural = rural.drop(columns="village").assign(
        aim_x=villages["x"].to_numpy()[aim], aim_y=villages["y"].to_numpy()[aim]
    )
    logger.info(
        "operator %s: %d sites reach %.1f %% of villages", operator, len(fixed) + len(rural),
        100 * reached.mean(),
    )  # fmt: skip
    return pd.concat([fixed, rural], ignore_index=True).assign(operator=operator)


def _five_g(land: Land, sites: pd.DataFrame) -> np.ndarray:
    """Which sites carry 5G n41: towns, centres of the urban communes, all of Bình Lư."""
    commune_name = land.communes["name"].loc[sites["commune_code"]].to_numpy()
    kind = sites["kind"].to_numpy()
    five_g: np.ndarray = (
        (kind == "town")
        | ((kind == "centre") & np.isin(commune_name, URBAN_5G_COMMUNES))
        | (commune_name == ALL_5G_COMMUNE)
    )
    return five_g


def _fixed_sites(land: Land, operator: str, rng: np.random.Generator) -> pd.DataFrame:
    """A site at (2nd/3rd operator: near) each commune centre, and a few in each town."""
    rows = []
    first = operator == next(iter(OPERATORS))
    for code, commune in land.communes.iterrows():
        x, y = land.centre_xy(code)
        if not first:
            px, py = land.near(code, x, y, rng, min_m=CENTRE_OFFSET_M[0], max_m=CENTRE_OFFSET_M[1])
            x, y = (px[0], py[0]) if px.size else (x, y)
        name = f"Trung tâm {commune['type'].lower()} {commune['name']}"
        rows.append(("centre", name, code, x, y))
    for town in land.towns.itertuples():
        count = TOWN_SITES.get(town.name, DEFAULT_TOWN_SITES)
        px, py = land.near(
            town.commune_code, town.x, town.y, rng, max_m=TOWN_RADIUS_M, count=8 * count
        )
        for k, i in enumerate(spaced_pick(px, py, count, TOWN_SITE_SPACING_M), start=1):
            rows.append(("town", f"{town.name} {k}", town.commune_code, px[i], py[i]))
    return pd.DataFrame(rows, columns=["kind", "name", "commune_code", "x", "y"])


def _rural_candidates(
    land: Land, dem: Dem, villages: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Per village: the highest of a few points within each RIDGE_SEARCH_M (hill tops near
    and farther), and a point beside it (on its access road)."""
    rows = []
    for k, v in enumerate(villages.itertuples()):
        here = (v.commune_code, v.x, v.y, rng)
        for radius_m in RIDGE_SEARCH_M:
            px, py = land.near(*here, max_m=radius_m, count=RIDGE_TRIES)
            if px.size:
                top = int(np.argmax(dem.sample(px, py)))
                name = f"Đồi {place_core(v.name)}"
                rows.append((name, v.commune_code, px[top], py[top], False, k))
        px, py = land.near(*here, min_m=NEAR_VILLAGE_M[0], max_m=NEAR_VILLAGE_M[1])
        if px.size:
            rows.append((v.name, v.commune_code, px[0], py[0], True, k))
    columns = ["name", "commune_code", "x", "y", "beside_village", "village"]
    return pd.DataFrame(rows, columns=columns).assign(kind="rural")


@dataclass
class _Fibre:
    """Fibre nodes and links (with UTM vertices) while the network is laid out."""

    nodes: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)

    def node(self, code: str, name: str, kind: str, x: float, y: float) -> str:
        """Add a node; returns its code."""
        self.nodes.append({"code": code, "name": name, "kind": kind, "x": float(x), "y": float(y)})
        return code

    def link(
        self,
        a: str,
        b: str,
        path: tuple[np.ndarray, np.ndarray],
        road: str | None,
        capacity_mbps: float,
        status: str = "active",
    ) -> None:
        """Add a link from node a to node b along `path` (UTM vertices)."""
        self.links.append(
            {
                "from_node_code": a,
                "to_node_code": b,
                "road": road,
                "capacity_mbps": capacity_mbps,
                "status": status,
                "path": path,
            }
        )

    def xy(self, code: str) -> tuple[float, float]:
        """UTM position of a node."""
        node = next(n for n in self.nodes if n["code"] == code)
        return node["x"], node["y"]

    def nearest_backbone(self, x: float, y: float) -> tuple[str, float]:
        """Code of, and distance (m) to, the nearest core, PoP or splice node."""
        pool = [n for n in self.nodes if n["kind"] != "site"]
        d = np.hypot([n["x"] - x for n in pool], [n["y"] - y for n in pool])
        i = int(np.argmin(d))
        return pool[i]["code"], float(d[i])


def _road_path(
    dem: Dem, a: tuple[float, float], b: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices every ROAD_STEP_M from a to b, pushed sideways towards the lowest ground.

    Mountain roads follow valleys; the sideways shift tapers to zero at both
    ends and is smoothed so the line does not zigzag.
    """
    (x0, y0), (x1, y1) = a, b
    length = max(float(np.hypot(x1 - x0, y1 - y0)), 1.0)
    t = np.linspace(0.0, 1.0, int(np.ceil(length / ROAD_STEP_M)) + 1)
    ux, uy = (y0 - y1) / length, (x1 - x0) / length  # unit normal
    offsets = np.linspace(-ROAD_WIGGLE_M, ROAD_WIGGLE_M, 13) * np.sin(np.pi * t)[:, None]
    px, py = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    heights = dem.sample(px[:, None] + ux * offsets, py[:, None] + uy * offsets)
    lowest = offsets[np.arange(t.size), np.argmin(heights, axis=1)]
    side = np.convolve(np.pad(lowest, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    side[[0, -1]] = 0.0
    return px + ux * side, py + uy * side


def _backbone(land: Land, dem: Dem) -> _Fibre:
    """Core, PoPs and splice closures along ROADS, plus feeders to towns off those roads."""
    places = {f"c:{c['name']}": land.centre_xy(code) for code, c in land.communes.iterrows()}
    places |= {f"t:{t.name}": (t.x, t.y) for t in land.towns.itertuples()}
    fibre = _Fibre()
    codes = {CORE: fibre.node("FN-CORE", "Node lõi Lai Châu", "core", *places[CORE])}

    def pop(key: str) -> str:
        if key not in codes:
            code = f"FN-POP-{len(codes):02d}"
            codes[key] = fibre.node(code, f"PoP {key[2:]}", "pop", *places[key])
        return codes[key]

    splices = itertools.count(1)
    for road, keys in ROADS.items():
        for a, b in itertools.pairwise(keys):
            xs, ys = _road_path(dem, places[a], places[b])
            chunks = max(1, round((xs.size - 1) / SPLICE_EVERY))
            cuts = np.linspace(0, xs.size - 1, chunks + 1).round().astype(int)
            start = pop(a)
            for i, j in itertools.pairwise(cuts):
                if j == cuts[-1]:
                    end = pop(b)
                else:
                    k = next(splices)
                    name = f"Măng xông {road} số {k}"
                    end = fibre.node(f"FN-SPL-{k:03d}", name, "splice", xs[j], ys[j])
                path = (xs[i : j + 1], ys[i : j + 1])
                fibre.link(start, end, path, road, ROAD_CAPACITY_MBPS[road])
                start = end
    for key in sorted(k for k in places if k.startswith("t:") and k not in codes):
        start, _ = fibre.nearest_backbone(*places[key])
        path = _road_path(dem, fibre.xy(start), places[key])
        fibre.link(start, pop(key), path, None, FEEDER_CAPACITY_MBPS)
    return fibre


def _backhaul(
    dem: Dem, sites: pd.DataFrame, fibre: _Fibre, rng: np.random.Generator
) -> pd.DataFrame:
    """Backhaul kind and capacity, status, and a spur + site node for each fibre-fed site."""
    xy = _xy(sites)
    reach = [fibre.nearest_backbone(x, y)[1] for x, y in zip(*xy, strict=True)]
    fed = np.array(reach) <= FIBRE_REACH_M
    reached = fed.copy()
    for _ in range(MICROWAVE_MAX_HOPS):
        relays = (xy[0][reached], xy[1][reached])
        reached |= (_distance(xy, relays) <= MICROWAVE_HOP_M).any(axis=1)
    kind = np.select([fed, reached], ["fibre", "microwave"], "satellite")
    n = len(sites)
    capacity = np.select(
        [fed & sites["five_g"].to_numpy(), fed, kind == "microwave"],
        [10_000.0, rng.choice(FIBRE_MBPS, n), rng.choice(MICROWAVE_MBPS, n)],
        rng.choice(SATELLITE_MBPS, n),
    )
    status = np.full(n, "active", dtype=object)
    rural = sites["kind"].to_numpy() == "rural"
    for mask, count, value in (
        (rural & fed, PLANNED_FIBRE, "planned"),
        (rural & ~fed, PLANNED_WIRELESS, "planned"),
        (rural, DOWN, "down"),
    ):
        pool = np.flatnonzero(mask & (status == "active"))
        status[rng.choice(pool, min(count, pool.size), replace=False)] = value
    node_codes: list[str | None] = [None] * n
    for i in np.flatnonzero(fed):
        site = sites.iloc[i]
        start, gap_m = fibre.nearest_backbone(site.x, site.y)
        if gap_m < CO_LOCATED_M:  # the site stands at the PoP: no spur
            node_codes[i] = start
            continue
        node = fibre.node(f"FN-{site.code}", f"Node trạm {site.code}", "site", site.x, site.y)
        path = _road_path(dem, fibre.xy(start), (site.x, site.y))
        link_status = "planned" if status[i] == "planned" else "active"
        fibre.link(start, node, path, None, float(capacity[i]), link_status)
        node_codes[i] = node
    return sites.assign(
        status=status,
        backhaul_kind=kind,
        backhaul_capacity_mbps=capacity,
        fibre_node_code=pd.Series(node_codes, index=sites.index, dtype=object),
    )


def _links_frame(fibre: _Fibre) -> gpd.GeoDataFrame:
    """Links as a GeoDataFrame, each oriented away from the core (from = nearer the core)."""
    graph = nx.Graph((link["from_node_code"], link["to_node_code"]) for link in fibre.links)
    hops = nx.single_source_shortest_path_length(graph, "FN-CORE")
    rows, lines = [], []
    for k, link in enumerate(fibre.links, start=1):
        a, b, (xs, ys) = link["from_node_code"], link["to_node_code"], link["path"]
        if hops[a] > hops[b]:
            a, b, xs, ys = b, a, xs[::-1], ys[::-1]
        rows.append(
            {
                "code": f"FL-{k:04d}",
                "from_node_code": a,
                "to_node_code": b,
                "road": link["road"],
                "capacity_mbps": link["capacity_mbps"],
                "status": link["status"],
                "synthetic": True,
            }
        )
        lines.append(shapely.linestrings(np.column_stack(to_lonlat(xs, ys))))
    frame = pd.DataFrame(rows).astype({"road": object})
    return gpd.GeoDataFrame(frame, geometry=lines, crs=WGS84)


def _sectors(sites: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Three 4G sectors per site (B3, or B28 at some rural Viettel sites); three n41 more if 5G.

    A rural site's first sector faces the village it was built for; the others follow at 120°.
    """
    rows = []
    jitter = (-AZIMUTH_JITTER_DEG, AZIMUTH_JITTER_DEG)
    for site in sites.itertuples():
        rural_700 = site.operator == "452-04" and site.kind == "rural" and rng.random() < B28_SHARE
        bands = ["B28" if rural_700 else "B3"]
        if site.five_g:
            bands.append("n41")
        first = rng.uniform(0, 120)
        if np.isfinite(site.aim_x):
            first = np.degrees(np.arctan2(site.aim_x - site.x, site.aim_y - site.y))
        azimuths = (first + 120 * np.arange(3) + rng.uniform(*jitter, 3)) % 360
        for band in bands:
            spec = BANDS[band]
            bandwidth = float(rng.choice(spec.bandwidths_mhz))  # one carrier per band and site
            # A band's panels share one mounting platform on the tower.
            antenna_height = site.tower_height_m - rng.uniform(*ANTENNA_BELOW_TOP_M)
            for k, azimuth in enumerate(azimuths, start=1):
                rows.append(
                    {
                        "code": f"{site.code}-{spec.tag}-{k}",
                        "site_code": site.code,
                        "technology": spec.technology,
                        "band": band,
                        "freq_mhz": spec.freq_mhz,
                        "bandwidth_mhz": bandwidth,
                        "azimuth_deg": round(float(azimuth), 1) % 360,
                        "mech_tilt_deg": round(rng.uniform(0, 6) * 2) / 2,
                        "elec_tilt_deg": float(rng.integers(0, 9)),
                        "h_beamwidth_deg": H_BEAMWIDTH_DEG,
                        "v_beamwidth_deg": spec.v_beamwidth_deg,
                        "gain_dbi": round(rng.uniform(*spec.gain_dbi), 1),
                        "tx_power_dbm": round(rng.uniform(*spec.tx_power_dbm) * 2) / 2,
                        "height_m": round(antenna_height, 1),
                        "synthetic": True,
                    }
                )
    return pd.DataFrame(rows)
