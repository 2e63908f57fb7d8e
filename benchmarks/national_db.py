"""National registry on PostGIS: bulk load time per layer, then latency of bbox, commune and
paged list queries through ``registry.store`` and through the HTTP API.

Registry (synthetic, seeded, labelled ``synthetic``): a rough hand-drawn outline of Vietnam
(39 vertices within lon 102.1–109.5, lat 8.5–23.4; its geodesic area is printed), cut into
communes as the Voronoi cells of seed points drawn uniformly inside it (3,300 by default, about
the count after the 2025 mergers); villages and sites drawn uniformly inside the outline (not
denser in the deltas), each in the commune of its nearest seed; 3 sectors per site; sellers
within about 1 km (normal, σ = 0.01°) of a random village. Everything is loaded through
``store.import_layers`` (the app's import: validation, references, audit, COPY on PostgreSQL),
one transaction per chunk of 100,000 rows, as provincial files would arrive.

Queries: ``--queries`` random windows (centres drawn uniformly in the outline), communes and
walks each, after a warm-up; a fresh session (or HTTP request) per query; first page of 100.
Goal: p95 of the bbox queries < 50 ms.

The database is emptied first (every registry table is dropped). Start a throwaway PostGIS::

    eval "$(scripts/postgis.sh start /tmp/natbench)"   # prints REGISTRY_TEST_POSTGIS_URL
    python benchmarks/national_db.py --url "$REGISTRY_TEST_POSTGIS_URL"
    scripts/postgis.sh stop /tmp/natbench

Usage::

    python benchmarks/national_db.py [--url URL] [--villages 100000] [--sites 100000]
        [--sellers 1000000] [--communes 3300] [--queries 200] [--seed 1] [--explain] [--no-load]

``--url`` defaults to ``REGISTRY_BENCH_POSTGIS_URL``; ``--no-load`` times the queries on a
registry loaded by an earlier run; ``--explain`` prints EXPLAIN ANALYZE of one query per kind.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import requests
import shapely
from scipy.spatial import cKDTree
from sqlalchemy import event, func, select, text
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry import create_app, db, store
from registry.models import Commune, Record, Seller, Site, Village

#: Rough outline of Vietnam (lon, lat), clockwise from the north-west corner; hand-drawn.
VIETNAM_OUTLINE = (
    (102.14, 22.40),
    (102.60, 22.75),
    (103.40, 22.80),
    (104.10, 22.80),
    (104.80, 23.20),
    (105.40, 23.35),
    (106.00, 22.95),
    (106.75, 22.85),
    (107.35, 21.95),
    (108.05, 21.55),
    (106.70, 20.40),
    (105.90, 19.30),
    (106.50, 18.10),
    (107.30, 16.90),
    (108.30, 16.00),
    (108.90, 15.20),
    (109.35, 13.50),
    (109.40, 12.20),
    (108.90, 11.20),
    (107.60, 10.40),
    (106.80, 10.30),
    (105.35, 8.60),
    (104.75, 8.60),
    (104.80, 9.90),
    (104.45, 10.40),
    (105.10, 10.95),
    (106.15, 11.00),
    (106.40, 11.70),
    (107.50, 12.30),
    (107.55, 14.60),
    (107.20, 16.20),
    (106.55, 16.95),
    (105.60, 18.10),
    (104.50, 19.10),
    (104.10, 19.70),
    (104.60, 20.45),
    (103.30, 20.50),
    (102.80, 21.30),
    (102.15, 21.60),
)
VIETNAM_BBOX = (102.1, 8.5, 109.5, 23.4)
CHUNK_ROWS = 100_000
PAGE = 100
KM_PER_DEG_LAT = 111.32
GOAL_MS = 50.0


# ---------------------------------------------------------------- the synthetic registry
def random_points(outline: shapely.Polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` (lon, lat) points drawn uniformly (in degrees) inside ``outline``."""
    x0, y0, x1, y1 = outline.bounds
    shapely.prepare(outline)
    found: list[np.ndarray] = []
    while sum(len(f) for f in found) < n:
        xy = rng.uniform((x0, y0), (x1, y1), size=(2 * n, 2))
        found.append(xy[shapely.contains_xy(outline, xy[:, 0], xy[:, 1])])
    return np.concatenate(found)[:n]


def synthetic_registry(
    *, communes: int, villages: int, sites: int, sellers: int, seed: int
) -> dict[str, Callable[[], Iterator[list[dict[str, Any]]]]]:
    """Each layer as a function yielding chunks of import rows (built lazily, to bound memory)."""
    rng = np.random.default_rng(seed)
    outline = shapely.Polygon(VIETNAM_OUTLINE)
    seeds = random_points(outline, communes, rng)
    cells = shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=shapely.box(*VIETNAM_BBOX), ordered=True
    ).geoms
    nearest = cKDTree(seeds)
    village_xy = random_points(outline, villages, rng)
    site_xy = random_points(outline, sites, rng)
    home = rng.integers(0, villages, sellers)
    seller_xy = np.clip(
        village_xy[home] + rng.normal(0, 0.01, (sellers, 2)), VIETNAM_BBOX[:2], VIETNAM_BBOX[2:]
    )

    def commune_rows() -> Iterator[list[dict[str, Any]]]:
        rows = []
        for i, cell in enumerate(cells):
            polygon = shapely.make_valid(cell.intersection(outline))
            parts = [g for g in getattr(polygon, "geoms", [polygon]) if g.geom_type == "Polygon"]
            lat = seeds[i, 1]
            area_km2 = (
                shapely.area(shapely.MultiPolygon(parts))
                * KM_PER_DEG_LAT**2
                * np.cos(np.radians(lat))
            )
            rows.append(
                {
                    "code": f"C{i:05d}",
                    "name": f"Xã Tổng Hợp {i}",
                    "type": "Xã",
                    "population": int(rng.integers(3_000, 60_000)),
                    "area_km2": round(float(area_km2), 2),
                    "synthetic": True,
                    "admin_center_lon": seeds[i, 0],
                    "admin_center_lat": lat,
                    "geometry": shapely.MultiPolygon(parts),
                }
            )
        yield rows

    def point_rows(
        xy: np.ndarray, make: Callable[[int], dict[str, Any]]
    ) -> Iterator[list[dict[str, Any]]]:
        points = shapely.points(xy)
        for start in range(0, len(xy), CHUNK_ROWS):
            yield [
                {**make(i), "geometry": points[i]}
                for i in range(start, min(start + CHUNK_ROWS, len(xy)))
            ]

    village_commune = nearest.query(village_xy)[1]
    site_commune = nearest.query(site_xy)[1]
    operators = ("452-01", "452-02", "452-04")
    return {
        "communes": commune_rows,
        "villages": lambda: point_rows(
            village_xy,
            lambda i: {
                "code": f"V{i:06d}",
                "name": f"Bản Đồng Nà {i}",
                "synthetic": True,
                "commune_code": f"C{village_commune[i]:05d}",
                "population": 200 + i % 800,
                "households": 40 + i % 160,
            },
        ),
        "sites": lambda: point_rows(
            site_xy,
            lambda i: {
                "code": f"S{i:06d}",
                "name": f"Trạm {i}",
                "operator": operators[i % 3],
                "commune_code": f"C{site_commune[i]:05d}",
                "tower_height_m": 30 + i % 20,
                "status": "active",
                "backhaul_kind": ("fibre", "microwave")[i % 2],
                "backhaul_capacity_mbps": 1000,
                "synthetic": True,
            },
        ),
        "sectors": lambda: (
            [
                {
                    "code": f"S{i // 3:06d}-{i % 3 + 1}",
                    "site_code": f"S{i // 3:06d}",
                    "technology": "4G",
                    "band": "B3",
                    "freq_mhz": 1842.5,
                    "bandwidth_mhz": 20,
                    "azimuth_deg": 120 * (i % 3),
                    "mech_tilt_deg": 2,
                    "elec_tilt_deg": 4,
                    "h_beamwidth_deg": 65,
                    "v_beamwidth_deg": 8,
                    "gain_dbi": 17,
                    "tx_power_dbm": 46,
                    "height_m": 28,
                    "synthetic": True,
                }
                for i in range(start, min(start + CHUNK_ROWS, 3 * sites))
            ]
            for start in range(0, 3 * sites, CHUNK_ROWS)
        ),
        "sellers": lambda: point_rows(
            seller_xy,
            lambda i: {
                "code": f"P{i:07d}",
                "name": f"Lò Thị Mai {i}",
                "village_code": f"V{home[i]:06d}",
                "products": "Chè;Mật ong",
                "platform": "TikTok Shop",
                "handle": f"@seller{i}",
                "phone_tech": ("4G", "5G")[i % 2],
                "wanted_class": "hd_live",
                "synthetic": True,
            },
        ),
    }


def load(
    app: Any, layers: dict[str, Callable[[], Iterator[list[dict[str, Any]]]]]
) -> list[tuple[str, int, float]]:
    """Import every layer chunk by chunk; (layer, rows, seconds) per layer."""
    engine = app.extensions["registry"]["engine"]
    db.drop_schema(engine)
    db.upgrade(engine)
    timings = []
    for layer, chunks in layers.items():
        rows, seconds = 0, 0.0
        for chunk in chunks():
            start = time.perf_counter()
            with db.transaction(app.extensions["registry"]["sessions"]) as session:
                store.import_layers(
                    session, {layer: chunk}, actor="benchmark", area_bbox=VIETNAM_BBOX
                )
            seconds += time.perf_counter() - start
            rows += len(chunk)
        timings.append((layer, rows, seconds))
        print(f"  loaded {rows:>9,} {layer:<9} in {seconds:6.1f} s", file=sys.stderr)
    return timings


def copy_vs_rows(app: Any, rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Seconds to import ``rows`` by COPY and by the row path, each rolled back afterwards."""
    seconds = []
    for bulk_min_rows in (1, len(rows) + 1):
        with app.extensions["registry"]["sessions"]() as session:
            start = time.perf_counter()
            store.import_layers(
                session,
                {"sellers": rows},
                actor="benchmark",
                area_bbox=VIETNAM_BBOX,
                bulk_min_rows=bulk_min_rows,
            )
            session.flush()
            seconds.append(time.perf_counter() - start)
            session.rollback()
    return seconds[0], seconds[1]


# ---------------------------------------------------------------- queries
def window(rng: random.Random, points: np.ndarray, size_km: float) -> tuple[float, ...]:
    """A ``size_km`` square (lon/lat degrees) centred on a random one of ``points``."""
    lon, lat = points[rng.randrange(len(points))]
    half_lat = size_km / 2 / KM_PER_DEG_LAT
    half_lon = half_lat / np.cos(np.radians(lat))
    return (lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat)


def timed(calls: Sequence[Callable[[], int]], warmup: int = 10) -> tuple[np.ndarray, float]:
    """Milliseconds per call (after ``warmup`` untimed calls) and the mean count returned."""
    for call in calls[:warmup]:
        call()
    ms, counts = [], []
    for call in calls:
        start = time.perf_counter()
        counts.append(call())
        ms.append((time.perf_counter() - start) * 1e3)
    return np.array(ms), float(np.mean(counts))


def store_page(app: Any, model: type[Record], **kw: Any) -> Callable[[], int]:
    def call() -> int:
        with app.extensions["registry"]["sessions"]() as session:
            return len(store.list_page(session, model, limit=PAGE, **kw).records)

    return call


def api_page(http: requests.Session, base: str, layer: str, **params: Any) -> Callable[[], int]:
    def call() -> int:
        r = http.get(f"{base}/api/v1/{layer}", params={"limit": PAGE, **params}, timeout=60)
        r.raise_for_status()
        return r.json()["numberReturned"]

    return call


def walks(
    http: requests.Session, base: str, starts: Sequence[str], pages: int
) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds of page 1 and of page ``pages`` of walks along next links from each start."""
    first, last = [], []
    for code in starts:
        url = f"{base}/api/v1/sellers?limit={PAGE}&after={code}"
        for n in range(1, pages + 1):
            start = time.perf_counter()
            doc = http.get(url, timeout=60).json()
            ms = (time.perf_counter() - start) * 1e3
            url = next(link["href"] for link in doc["links"] if link["rel"] == "next")
            if n == 1:
                first.append(ms)
        last.append(ms)
    return np.array(first), np.array(last)


def offset_page(app: Any, offset: int) -> Callable[[], int]:
    """The same page by OFFSET (raw SQL), as a reference for the keyset walk."""
    stmt = select(Seller).order_by(Seller.code).offset(offset).limit(PAGE)

    def call() -> int:
        with app.extensions["registry"]["sessions"]() as session:
            return len(list(session.scalars(stmt)))

    return call


def explain(app: Any, calls: dict[str, Callable[[], int]]) -> None:
    """Print EXPLAIN ANALYZE of every statement each call sends (its last one per kind)."""
    engine = app.extensions["registry"]["engine"]
    for name, call in calls.items():
        sent: list[tuple[str, Any]] = []

        def record(
            _c: Any,
            _cur: Any,
            statement: str,
            params: Any,
            *_: Any,
            sent: list[tuple[str, Any]] = sent,
        ) -> None:
            sent.append((statement, params))

        event.listen(engine, "before_cursor_execute", record)
        call()
        event.remove(engine, "before_cursor_execute", record)
        with engine.connect() as conn:
            for statement, params in sent:
                plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {statement}", params)
                print(f"\n== {name}\n{statement}\n" + "\n".join(r[0] for r in plan))


def row(name: str, ms: np.ndarray, detail: str, goal: str = "") -> tuple[str, ...]:
    p50, p95, p99 = np.percentile(ms, (50, 95, 99))
    return (name, f"{p50:.1f}", f"{p95:.1f}", f"{p99:.1f}", detail, goal)


def print_rows(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--url",
        default=os.environ.get("REGISTRY_BENCH_POSTGIS_URL"),
        help="PostGIS URL (default: $REGISTRY_BENCH_POSTGIS_URL); emptied first",
    )
    ap.add_argument("--communes", type=int, default=3_300)
    ap.add_argument("--villages", type=int, default=100_000)
    ap.add_argument("--sites", type=int, default=100_000)
    ap.add_argument("--sellers", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200, help="timed queries per kind")
    ap.add_argument("--walks", type=int, default=10, help="walks of 100 pages")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE per kind")
    ap.add_argument("--no-load", action="store_true", help="keep the registry already loaded")
    a = ap.parse_args(argv)
    if not a.url or not a.url.startswith("postgresql"):
        ap.error("give a PostGIS URL: --url postgresql+psycopg://… or REGISTRY_BENCH_POSTGIS_URL")

    tmp = tempfile.mkdtemp(prefix="natbench-")
    app = create_app(
        {
            "DATABASE_URL": a.url,
            "AREA_BBOX": VIETNAM_BBOX,
            "SECRET_KEY": "bench",
            "DATA_DIR": tmp,
            "MAPS_DIR": tmp,
        }
    )
    outline = shapely.Polygon(VIETNAM_OUTLINE)
    area_km2 = abs(pyproj.Geod(ellps="WGS84").geometry_area_perimeter(outline)[0]) / 1e6
    layers = synthetic_registry(
        communes=a.communes, villages=a.villages, sites=a.sites, sellers=a.sellers, seed=a.seed
    )
    print(
        f"synthetic national registry: outline {area_km2:,.0f} km², {a.communes:,} communes, "
        f"{a.villages:,} villages, {a.sites:,} sites, {3 * a.sites:,} sectors, "
        f"{a.sellers:,} sellers (seed {a.seed})",
        file=sys.stderr,
    )
    loads = [] if a.no_load else load(app, layers)
    sessions = app.extensions["registry"]["sessions"]
    with sessions() as session:
        codes = list(session.scalars(select(Commune.code)))
        village_xy = np.array(
            [
                (r.min_lon, r.min_lat)
                for r in session.execute(select(Village.min_lon, Village.min_lat))
            ]
        )
        seller_count = session.scalar(select(func.count()).select_from(Seller))
        audit_rows = session.scalar(text("SELECT count(*) FROM audit_log"))
    reference = next(iter(layers["sellers"]()))[:20_000]
    reference = [{**r, "code": "X" + r["code"]} for r in reference]
    copy_s, rows_s = copy_vs_rows(app, reference)

    rng = random.Random(a.seed)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base, http = f"http://127.0.0.1:{server.server_port}", requests.Session()
    n = a.queries
    kinds: dict[str, tuple[list[Callable[[], int]], str]] = {}
    for size in (10, 50):
        for model in (Village, Site, Seller):
            kinds[f"store bbox {size}x{size} km, {model.layer}"] = (
                [store_page(app, model, bbox=window(rng, village_xy, size)) for _ in range(n)],
                "bbox",
            )
        for model in (Site, Seller):
            kinds[f"API bbox {size}x{size} km, {model.layer}"] = (
                [
                    api_page(
                        http,
                        base,
                        model.layer,
                        bbox=",".join(map(str, window(rng, village_xy, size))),
                    )
                    for _ in range(n)
                ],
                "bbox",
            )
    for model in (Village, Site, Seller):
        kinds[f"store commune, {model.layer}"] = (
            [store_page(app, model, commune=rng.choice(codes)) for _ in range(n)],
            "",
        )
        kinds[f"API commune, {model.layer}"] = (
            [api_page(http, base, model.layer, commune=rng.choice(codes)) for _ in range(n)],
            "",
        )
    table, bbox_p95 = [], []
    for name, (calls, kind) in kinds.items():
        ms, returned = timed(calls)
        table.append(
            row(
                name,
                ms,
                f"{returned:.0f} returned on average",
                f"p95 < {GOAL_MS:.0f} ms" if kind else "",
            )
        )
        if kind:
            bbox_p95.append(float(np.percentile(ms, 95)))
    walk_starts = [f"P{rng.randrange(seller_count - 101 * PAGE):07d}" for _ in range(a.walks)]
    first, last = walks(http, base, walk_starts, 100)
    table.append(
        row(
            "API sellers walk, page 1 (after=random code)",
            first,
            f"{a.walks} walks along next links",
        )
    )
    table.append(row("API sellers walk, page 100", last, "keyset: same cost as page 1"))
    ms, _ = timed([offset_page(app, 99 * PAGE)] * 50)
    table.append(row("reference: page 100 by OFFSET 9900 (SQL)", ms, "what offset paging cost"))
    ms, _ = timed([offset_page(app, (seller_count // PAGE // 2) * PAGE)] * 20, warmup=2)
    table.append(
        row(
            f"reference: page {seller_count // PAGE // 2} by OFFSET (SQL)",
            ms,
            "the middle of the sellers",
        )
    )
    server.shutdown()

    print(
        f"\nPostGIS national registry: {area_km2:,.0f} km² outline, "
        f"{a.communes:,} communes, {a.villages:,} villages, {a.sites:,} sites "
        f"(+{3 * a.sites:,} sectors), {seller_count:,} sellers, {audit_rows:,} audit rows; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[1]:.1f} (5 min)\n"
    )
    if loads:
        total_rows = sum(r for _, r, _ in loads)
        total_s = sum(s for _, _, s in loads)
        print_rows(
            [(layer, f"{rows:,}", f"{s:.1f}", f"{rows / s:,.0f}") for layer, rows, s in loads]
            + [("total", f"{total_rows:,}", f"{total_s:.1f}", f"{total_rows / total_s:,.0f}")],
            ("load (import_layers, COPY)", "rows", "s", "rows/s"),
        )
        print()
    print(
        f"import of {len(reference):,} sellers into the loaded registry (rolled back): "
        f"COPY {copy_s:.2f} s, row path {rows_s:.2f} s: COPY is {rows_s / copy_s:.1f}x faster\n"
    )
    print_rows(table, ("query (first page of 100)", "p50 ms", "p95 ms", "p99 ms", "detail", "goal"))
    worst = max(bbox_p95)
    print(
        f"\nworst bbox p95: {worst:.1f} ms (goal < {GOAL_MS:.0f} ms): "
        f"{'met' if worst < GOAL_MS else 'NOT met'}"
    )
    if a.explain:
        explain(
            app,
            {
                "store bbox 10x10 km, sellers": store_page(
                    app, Seller, bbox=window(rng, village_xy, 10)
                ),
                "store bbox 50x50 km, sellers": store_page(
                    app, Seller, bbox=window(rng, village_xy, 50)
                ),
                "store commune, sellers": store_page(app, Seller, commune=rng.choice(codes)),
                "store commune, sites": store_page(app, Site, commune=rng.choice(codes)),
                "store page after a code, sellers": store_page(
                    app, Seller, after=f"P{rng.randrange(seller_count):07d}"
                ),
            },
        )


if __name__ == "__main__":
    main()
