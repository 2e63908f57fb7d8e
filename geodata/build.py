"""Build the Lai Châu demo data: the real communes plus synthetic layers.

`build_demo` depends only on its seed, its resolution and geodata/raw/ (no
Flask, no database): it writes the synthetic DEM GeoTIFF and returns every
layer as a (Geo)DataFrame. Synthetic rows carry ``synthetic=True``; how each
layer is made is documented in geodata/SOURCES.md. Run
``python -m geodata.build OUT_DIR`` to build and print the layer counts.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio

from geodata.dem import Dem, synthesize_dem, write_dem
from geodata.land import Land, load_land, points_frame, rng_for, spaced_pick
from geodata.names import ascii_slug, person_name, place_core, village_names
from geodata.network import build_network

logger = logging.getLogger(__name__)

RAW_DIR = Path(__file__).parent / "raw"
COARSE_DEM = "lai_chau_dem_pvlib_altitude_5arcmin.tif"
DEFAULT_SEED = 20251104  # the day of the Bình Lư 5G livestream
PROVINCE = "Lai Châu"  # the province every demo commune belongs to

# Villages: Lai Châu has about 1,100 thôn/bản for 512,601 people.
VILLAGE_MEAN_POP = 500  # people per village: ~1,000 villages in all
MIN_VILLAGES = 6  # even the emptiest commune (Mù Cả, 3,299 people) has several bản
MIN_VILLAGE_POP = 40
VILLAGE_POP_SIGMA = 0.5  # lognormal spread of village sizes (a factor of 1.65 either way)
HOUSEHOLD_SIZE = (4.2, 5.4)  # persons per household, ~4.8 on average in the uplands
CANDIDATES_PER_VILLAGE = 40
VILLAGE_SPACING = 0.5  # minimum distance between villages, times sqrt(area per village)
# Where people live: moderate height, gentle ground, valley sides rather than crests.
PREFERRED_ELEVATION_M = (300.0, 1_600.0)  # Thái valley villages to H'Mông upland villages
ELEVATION_FALLOFF_M = 300.0
SLOPE_SCALE_DEG = 20.0  # suitability exp(-(slope/20°)²): 0.37 at 20°, 0.1 at 30°
RIDGE_RING_M = 1_000.0  # topographic position against a ring this wide ...
RIDGE_RELIEF_M = 50.0  # ... a point this far above the ring mean is on a crest

# Sellers and products (the province's OCOP specialities and where each is known from).
SELLER_TOTAL = 500
PRODUCTS = ("Chè", "Mắc ca", "Mật ong", "Gạo Séng Cù", "Sâm Lai Châu")
PRODUCT_AREAS = {
    "Chè": ("Tân Uyên", "Bình Lư", "Than Uyên", "Mường Khoa", "Bản Bo", "Sìn Hồ"),
    "Mắc ca": ("Bình Lư", "Tân Uyên", "Than Uyên", "Phong Thổ", "Sìn Hồ", "Nậm Tăm"),
    "Mật ong": ("Mường Tè", "Bum Tở", "Pa Ủ", "Tà Tổng", "Sìn Hồ"),
    "Gạo Séng Cù": ("Than Uyên", "Mường Than", "Mường Kim", "Tân Uyên"),
    "Sâm Lai Châu": ("Tà Tổng", "Bum Nưa", "Pa Ủ", "Tả Lèng", "Sìn Hồ"),
}
PRODUCT_AREA_WEIGHT = 5.0  # a product is this much likelier where it is known from
PRODUCT_COUNT_P = (0.6, 0.3, 0.1)  # sellers offer 1, 2 or 3 products
COOPERATIVE_SHARE = 0.15  # HTX (cooperatives) among the sellers
PLATFORMS = {"TikTok Shop": 0.55, "Facebook": 0.35, "Shopee": 0.10}
PHONE_5G_SHARE = 0.2
WANTED_CLASSES = {"hd_live": 0.7, "sd_live": 0.2, "fullhd_live": 0.1}
SELLER_RADIUS_M = 300.0  # sellers live in or just around their village

# Livestream events.
VN_TZ = timezone(timedelta(hours=7))
SYNTHETIC_EVENTS = 10
EVENT_YEAR = 2025
EVENT_SEASON = {  # harvest months, when sales events are held
    "Chè": (3, 5),
    "Mắc ca": (9, 11),
    "Mật ong": (4, 6),
    "Gạo Séng Cù": (10, 12),
    "Sâm Lai Châu": (1, 12),
}
EVENT_KINDS = ("Phiên livestream", "Ngày hội", "Phiên chợ online")
EVENT_DURATIONS_MIN = (60, 90, 120, 180, 240)
EVENT_RADIUS_M = 500.0  # events are held in the commune centre
EVENT_MEDIAN_ORDERS = 400  # lognormal, sigma = 0.7: most events close 100-1,500 orders
VIEWS_PER_ORDER = (15.0, 60.0)
# The real event (DESIGN.md): Bình Lư, 4 Nov 2025, a four-hour livestream, 2,500 orders
# over 5G; views were not reported and the hour is not known (08:00 assumed).
REAL_EVENT_COMMUNE = "Bình Lư"
REAL_EVENT = {
    "name": "Livestream nông sản xã Bình Lư qua 5G",
    "start": datetime(2025, 11, 4, 8, 0, tzinfo=VN_TZ),
    "duration_min": 240,
    "streams": 1,
    "orders": 2500,
    "views": None,
}

Layers = dict[str, gpd.GeoDataFrame | pd.DataFrame]


def build_demo(
    out_dir: Path,
    *,
    seed: int = DEFAULT_SEED,
    dem_resolution_m: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> Layers:
    """Write the synthetic DEM to ``out_dir / "dem.tif"`` and return all demo layers.

    Parameters
    ----------
    out_dir : folder for dem.tif (created if missing).
    seed : seed of every random choice; the same seed gives identical output.
    dem_resolution_m : DEM cell size in metres (30 for the demo; e.g. 500 for fast tests).
    progress : called with a short message as each stage starts.

    Returns
    -------
    dict with ``communes`` (real), ``villages``, ``sites``, ``fibre_nodes``,
    ``fibre_links``, ``sellers`` and ``events`` as GeoDataFrames in EPSG:4326,
    and ``sectors`` as a DataFrame.
    """

    def stage(message: str) -> None:
        logger.info(message)
        if progress is not None:
            progress(message)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage(f"terrain at {dem_resolution_m:g} m")
    land = load_land(RAW_DIR)
    dem = synthesize_dem(
        RAW_DIR / COARSE_DEM,
        seed=seed,
        resolution_m=dem_resolution_m,
        settlements=land.settlements(),
    )
    write_dem(dem, out_dir / "dem.tif", description=_dem_description(seed, dem_resolution_m))
    stage("villages")
    villages = _villages(land, dem, rng_for(seed, "villages"))
    stage("sites, sectors and fibre")
    network = build_network(land, dem, villages, seed)
    stage("sellers and events")
    village_columns = ["code", "name", "commune_code", "population", "households"]
    village_rows = villages[village_columns].assign(synthetic=True)
    return {
        "communes": land.communes.reset_index(drop=True).assign(province=PROVINCE, synthetic=False),
        "villages": points_frame(village_rows, villages["x"], villages["y"]),
        "sites": network.sites,
        "sectors": network.sectors,
        "fibre_nodes": network.fibre_nodes,
        "fibre_links": network.fibre_links,
        "sellers": _sellers(land, villages, rng_for(seed, "sellers")),
        "events": _events(land, rng_for(seed, "events")),
    }


def _dem_description(seed: int, resolution_m: float) -> str:
    return (
        "SYNTHETIC terrain for the Lai Chau demo, not survey data: the real 5-arc-minute "
        f"pvlib/Mapzen elevation grid, cubic-upsampled to {resolution_m:g} m in EPSG:32648, plus "
        f"fractal valleys, ridges and roughness by FFT spectral synthesis with seed {seed} "
        "(geodata/dem.py; see geodata/SOURCES.md)."
    )


def _suitability(dem: Dem, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How likely a village is at each UTM point (0-1): height, slope and crest penalties."""
    h = dem.sample(x, y)
    low, high = PREFERRED_ELEVATION_M
    off_band = np.maximum(low - h, 0) + np.maximum(h - high, 0)
    score = np.exp(-((off_band / ELEVATION_FALLOFF_M) ** 2))
    score *= np.exp(-((dem.slope_deg(x, y) / SLOPE_SCALE_DEG) ** 2))
    crest = (dem.relief(x, y, RIDGE_RING_M) - RIDGE_RELIEF_M) / RIDGE_RELIEF_M
    return score / (1 + np.exp(np.clip(crest, -50, 50)))


def split_population(total: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` lognormal-sized integers, each ≥ MIN_VILLAGE_POP, summing exactly to `total`.

    Largest-remainder rounding keeps the sum exact.

    >>> split_population(1000, 3, np.random.default_rng(0)).sum()
    np.int64(1000)
    """
    spare = total - count * MIN_VILLAGE_POP
    weights = rng.lognormal(0.0, VILLAGE_POP_SIGMA, count)
    share = spare * weights / weights.sum()
    people = np.floor(share).astype(np.int64)
    largest_remainders = np.argsort(people - share, kind="stable")
    people[largest_remainders[: spare - people.sum()]] += 1
    return people + MIN_VILLAGE_POP


def _villages(land: Land, dem: Dem, rng: np.random.Generator) -> pd.DataFrame:
    """Villages per commune with the commune's real population split among them (UTM x, y)."""
    frames = []
    for code, commune in land.communes.iterrows():
        count = max(MIN_VILLAGES, round(commune["population"] / VILLAGE_MEAN_POP))
        x, y = land.random_points(code, CANDIDATES_PER_VILLAGE * count, rng)
        score = np.maximum(_suitability(dem, x, y), 1e-12)
        # weighted shuffle (Efraimidis-Spirakis): suitable points tend to come first
        order = np.argsort(-np.log(rng.random(x.size)) / score, kind="stable")
        spacing = VILLAGE_SPACING * np.sqrt(commune["area_km2"] * 1e6 / count)
        picked = order[spaced_pick(x[order], y[order], count, spacing)]
        people = split_population(int(commune["population"]), count, rng)
        households = np.rint(people / rng.uniform(*HOUSEHOLD_SIZE, count)).astype(np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "code": [f"{code}-V{k:03d}" for k in range(1, count + 1)],
                    "name": village_names(rng, count, urban=commune["type"] == "Phường"),
                    "commune_code": code,
                    "population": people,
                    "households": np.maximum(households, 1),
                    "x": x[picked],
                    "y": y[picked],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _product_weights(land: Land) -> pd.DataFrame:
    """Relative weight of each product (columns) in each commune (index = code)."""
    names = land.communes["name"]
    return pd.DataFrame(
        {p: np.where(names.isin(PRODUCT_AREAS[p]), PRODUCT_AREA_WEIGHT, 1.0) for p in PRODUCTS},
        index=land.communes.index,
    )


def _draw(rng: np.random.Generator, shares: dict[str, float]) -> str:
    """One key of `shares`, drawn with the given probabilities."""
    keys = list(shares)
    return keys[rng.choice(len(keys), p=list(shares.values()))]


def _sellers(land: Land, villages: pd.DataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Sellers in villages: more where people live and where the products are known from."""
    weights = _product_weights(land)
    appeal = villages["population"] * weights.mean(axis=1).loc[villages["commune_code"]].values
    counts = rng.multinomial(SELLER_TOTAL, (appeal / appeal.sum()).to_numpy())
    rows: list[dict[str, Any]] = []
    xs: list[float] = []
    ys: list[float] = []
    handles: set[str] = set()
    for village, count in zip(villages.itertuples(), counts, strict=True):
        p_product = weights.loc[village.commune_code].to_numpy()
        p_product = p_product / p_product.sum()
        here = (village.commune_code, village.x, village.y, rng)
        for _ in range(count):
            px, py = land.near(*here, max_m=SELLER_RADIUS_M)
            xs.append(px[0] if px.size else village.x)
            ys.append(py[0] if py.size else village.y)
            n_products = rng.choice(len(PRODUCT_COUNT_P), p=PRODUCT_COUNT_P) + 1
            picks = rng.choice(len(PRODUCTS), n_products, replace=False, p=p_product)
            products = [PRODUCTS[i] for i in sorted(picks)]
            if rng.random() < COOPERATIVE_SHARE:
                commune = land.communes.at[village.commune_code, "name"]
                place = commune if rng.random() < 0.5 else place_core(village.name)
                name, base = f"HTX {products[0]} {place}", ascii_slug(f"{products[0]} {place}")
            else:
                name = person_name(rng)
                base = ascii_slug(name)
            handle, n = f"@{base}", 1
            while handle in handles:
                n += 1
                handle = f"@{base}{n}"
            handles.add(handle)
            rows.append(
                {
                    "code": f"SEL-{len(rows) + 1:04d}",
                    "name": name,
                    "village_code": village.code,
                    "products": ";".join(products),
                    "platform": _draw(rng, PLATFORMS),
                    "handle": handle,
                    "phone_tech": "5G" if rng.random() < PHONE_5G_SHARE else "4G",
                    "wanted_class": _draw(rng, WANTED_CLASSES),
                    "synthetic": True,
                }
            )
    return points_frame(pd.DataFrame(rows), np.array(xs), np.array(ys))


def _events(land: Land, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """The real Bình Lư livestream plus synthetic sales events at commune centres."""
    code_of = pd.Series(land.communes.index, index=land.communes["name"])
    code = code_of[REAL_EVENT_COMMUNE]
    x, y = land.centre_xy(code)
    rows, xs, ys = [{**REAL_EVENT, "commune_code": code, "synthetic": False}], [x], [y]
    for _ in range(SYNTHETIC_EVENTS):
        product = PRODUCTS[rng.integers(len(PRODUCTS))]
        commune = PRODUCT_AREAS[product][rng.integers(len(PRODUCT_AREAS[product]))]
        code = code_of[commune]
        first, last = EVENT_SEASON[product]
        month, day, hour = (int(rng.integers(*r)) for r in ((first, last + 1), (1, 29), (8, 21)))
        orders = int(rng.lognormal(np.log(EVENT_MEDIAN_ORDERS), 0.7))
        rows.append(
            {
                "name": f"{EVENT_KINDS[rng.integers(len(EVENT_KINDS))]} {product} {commune}",
                "commune_code": code,
                "start": datetime(EVENT_YEAR, month, day, hour, tzinfo=VN_TZ),
                "duration_min": int(rng.choice(EVENT_DURATIONS_MIN)),
                "streams": int(rng.integers(1, 13)),
                "orders": orders,
                "views": int(orders * rng.uniform(*VIEWS_PER_ORDER)),
                "synthetic": True,
            }
        )
        cx, cy = land.centre_xy(code)
        px, py = land.near(code, cx, cy, rng, max_m=EVENT_RADIUS_M)
        xs.append(px[0] if px.size else cx)
        ys.append(py[0] if py.size else cy)
    frame = pd.DataFrame(rows).assign(x=xs, y=ys)
    frame = frame.sort_values("start", kind="stable").reset_index(drop=True)
    frame.insert(0, "code", [f"EVT-{k:04d}" for k in range(1, len(frame) + 1)])
    frame["start"] = frame["start"].map(datetime.isoformat)
    frame["views"] = frame["views"].astype("Int64")
    columns = ["code", "name", "commune_code", "start", "duration_min", "streams", "orders"]
    columns += ["views", "synthetic"]
    return points_frame(frame[columns], frame["x"].to_numpy(), frame["y"].to_numpy())


def main(argv: list[str] | None = None) -> None:
    """Command line: build the demo into OUT_DIR and print layer counts and DEM figures."""
    parser = argparse.ArgumentParser(
        prog="python -m geodata.build", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out_dir", type=Path, help="folder for dem.tif")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--resolution", type=float, default=30.0, help="DEM cell size in metres")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.perf_counter()
    layers = build_demo(args.out_dir, seed=args.seed, dem_resolution_m=args.resolution)
    elapsed = time.perf_counter() - started
    for name, frame in layers.items():
        print(f"{name:<12} {len(frame):>6}")
    with rasterio.open(args.out_dir / "dem.tif") as src:
        heights = src.read(1, masked=True)
        print(
            f"dem.tif      {src.width}x{src.height} cells of {src.res[0]:g} m, "
            f"{heights.min()}-{heights.max()} m, SYNTHETIC={src.tags()['SYNTHETIC']}"
        )
    print(f"built in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
