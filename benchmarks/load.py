"""Load test: 50 concurrent clients for 60 s against the real server (gunicorn, as production
runs it) on 127.0.0.1, with mixed reads, writes and map tiles; prints requests per second,
p50/p95/p99 latency per kind and the error count. Goal: no errors, reads' p95 < 200 ms.

Run ``flask --app registry demo`` first. The demo's SQLite file is copied to a temporary folder
(writes never touch it) and served with the demo's coverage rasters; ``--database-url`` serves
an existing database instead (e.g. PostGIS; writes then go to it). Every client is a thread with
its own keep-alive connection (spread over 5 processes, so one interpreter lock does not queue
every client's timing); each loop picks, by weight:

* read (60 %): a village list in a random 10 km box, one site, a name search, a seller's history;
* tile (25 %): a service-class XYZ tile at zoom 10–13 over the province;
* write (15 %): GET then PATCH of the client's own village (population) with its version
  (If-Match); both requests count as writes.

Errors are transport failures, 5xx and any 4xx but a 409 (a 409 is the correct answer to a
stale version; none are expected since each client writes its own village).

    python benchmarks/load.py [--clients 50] [--seconds 60] [--workers CPUS] [--threads 16]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import urllib3
from sqlalchemy import select

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from registry import accounts, create_app, db  # noqa: E402
from registry.models import Seller, Site, Village  # noqa: E402

WEIGHTS = {"read": 0.60, "tile": 0.25, "write": 0.15}
READ_P95_GOAL_MS = 200.0
#: Lai Châu's extent for random boxes and tiles (lon/lat).
AREA = (102.35, 21.70, 103.95, 22.80)


def _tile(lon: float, lat: float, z: int) -> str:
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    return f"/api/v1/coverage/tiles/{z}/{x}/{y}.png"


def prepare(database_url: str | None, workdir: Path) -> dict[str, Any]:
    """The database to serve, an editor's token, and codes to read and write."""
    demo = create_app()
    data_dir = demo.config["DATA_DIR"]
    if database_url is None:
        source = Path(demo.config["DATABASE_URL"].removeprefix("sqlite:///"))
        if not source.exists():
            raise SystemExit(f"no demo registry at {source}: run `flask --app registry demo`")
        shutil.copy(source, workdir / "registry.sqlite")
        database_url = f"sqlite:///{workdir / 'registry.sqlite'}"
    demo.extensions["registry"]["engine"].dispose()
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "bench"})
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        name = f"load-{os.getpid()}"
        accounts.create_user(session, name, "load test password", "editor")
        token = accounts.issue_token(session, name, "load")[1]
        villages = list(session.scalars(select(Village.code).order_by(Village.code)))
        sites = list(session.scalars(select(Site.code)))
        sellers = list(session.scalars(select(Seller.code)))
        names = [n.split()[-1] for n in session.scalars(select(Village.name).limit(200))]
    app.extensions["registry"]["engine"].dispose()
    return {
        "database_url": database_url,
        "data_dir": data_dir,
        "token": token,
        "villages": villages,
        "sites": sites,
        "sellers": sellers,
        "names": names,
    }


def serve(setup: dict[str, Any], port: int, workers: int, threads: int) -> subprocess.Popen[Any]:
    env = {
        **os.environ,
        "REGISTRY_DATABASE_URL": setup["database_url"],
        "REGISTRY_DATA_DIR": setup["data_dir"],
        "REGISTRY_SECRET_KEY": "b" * 64,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--timeout",
            "120",
            "--log-level",
            "warning",
            "registry.wsgi:app",
        ],
        env=env,
        start_new_session=True,
    )
    http = urllib3.PoolManager()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if http.request("GET", f"http://127.0.0.1:{port}/api/v1/", timeout=10).status == 200:
                return proc
        except urllib3.exceptions.HTTPError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("the server did not start")


def client(
    i: int,
    port: int,
    setup: dict[str, Any],
    stop_at: float,
    samples: dict[str, list[float]],
    failures: list[str],
    lock: threading.Lock,
) -> None:
    """One user: its own connection, a fixed village to edit, random reads and tiles."""
    rng = random.Random(i)
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, timeout=30, retries=False)
    auth = {"Authorization": f"Bearer {setup['token']}"}
    mine = setup["villages"][i % len(setup["villages"])]
    local: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []

    def call(kind: str, method: str, path: str, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            r = pool.request(method, path, headers={**auth, **kw.pop("headers", {})}, **kw)
        except urllib3.exceptions.HTTPError as exc:
            r = None
            errors.append(f"{method} {path}: {exc}")
        local[kind].append(time.perf_counter() - t0)
        if r is not None and (
            r.status >= 500 or (400 <= r.status < 500 and r.status not in (404, 409))
        ):
            errors.append(f"{method} {path}: {r.status} {r.data[:120]!r}")
        return r

    while time.monotonic() < stop_at:
        kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        lon, lat = rng.uniform(AREA[0], AREA[2]), rng.uniform(AREA[1], AREA[3])
        if kind == "read":
            bbox = f"{lon:.4f},{lat:.4f},{lon + 0.1:.4f},{lat + 0.09:.4f}"
            call(
                kind,
                "GET",
                rng.choice(
                    [
                        f"/api/v1/villages?bbox={bbox}",
                        f"/api/v1/sites/{rng.choice(setup['sites'])}",
                        f"/api/v1/villages?q={quote(rng.choice(setup['names']))}",
                        f"/api/v1/sellers/{rng.choice(setup['sellers'])}/history",
                    ]
                ),
            )
        elif kind == "tile":
            call(kind, "GET", _tile(lon, lat, rng.randint(10, 13)))
        else:
            r = call(kind, "GET", f"/api/v1/villages/{mine}")
            if r is not None and r.status == 200:
                version = json.loads(r.data)["properties"]["version"]
                call(
                    kind,
                    "PATCH",
                    f"/api/v1/villages/{mine}",
                    body=json.dumps({"population": rng.randint(50, 900)}),
                    headers={"If-Match": f'"{version}"', "Content-Type": "application/json"},
                )
    with lock:
        for k, v in local.items():
            samples[k].extend(v)
        failures.extend(errors)


def client_group(
    indices: list[int], port: int, setup: dict[str, Any], stop_at: float
) -> tuple[dict[str, list[float]], list[str]]:
    """Some of the clients, as threads of one process; their samples and failures."""
    samples: dict[str, list[float]] = defaultdict(list)
    failures: list[str] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=client, args=(i, port, setup, stop_at, samples, failures, lock))
        for i in indices
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return dict(samples), failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="gunicorn worker processes (default: one per CPU)",
    )
    parser.add_argument("--threads", type=int, default=16, help="threads per worker")
    parser.add_argument("--port", type=int, default=54380)
    parser.add_argument("--database-url", help="serve this database instead of a demo copy")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=5,
        help="processes the client threads are spread over (one Python "
        "process's GIL would otherwise queue 50 clients' timings)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup = prepare(args.database_url, Path(tmp))
        proc = serve(setup, args.port, args.workers, args.threads)
        samples: dict[str, list[float]] = defaultdict(list)
        failures: list[str] = []
        try:
            start = time.monotonic()
            stop_at = start + args.seconds
            groups = [
                list(range(i, args.clients, args.client_processes))
                for i in range(args.client_processes)
            ]
            with ProcessPoolExecutor(args.client_processes) as pool:
                for part, errors in pool.map(
                    client_group,
                    groups,
                    [args.port] * len(groups),
                    [setup] * len(groups),
                    [stop_at] * len(groups),
                ):
                    for kind, values in part.items():
                        samples[kind].extend(values)
                    failures.extend(errors)
            wall = time.monotonic() - start
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    total = sum(len(v) for v in samples.values())
    print(
        f"{args.clients} clients, {wall:.1f} s, gunicorn {args.workers} workers x "
        f"{args.threads} threads on 127.0.0.1 ({os.cpu_count()} CPUs shared with the clients)"
    )
    print(
        f"{'kind':<6} | {'requests':>8} | {'req/s':>7} | {'p50 ms':>7} | {'p95 ms':>7} | "
        f"{'p99 ms':>7}"
    )
    for kind in (*WEIGHTS, "all"):
        ms = (
            np.array([x for v in samples.values() for x in v] if kind == "all" else samples[kind])
            * 1000
        )
        if ms.size:
            p50, p95, p99 = np.percentile(ms, [50, 95, 99])
            print(
                f"{kind:<6} | {ms.size:>8} | {ms.size / wall:>7.1f} | {p50:>7.1f} | "
                f"{p95:>7.1f} | {p99:>7.1f}"
            )
    read_p95 = float(np.percentile(np.array(samples["read"]) * 1000, 95))
    print(
        f"errors: {len(failures)} of {total} requests (goal 0); reads p95 {read_p95:.0f} ms "
        f"(goal < {READ_P95_GOAL_MS:.0f} ms): "
        f"{'met' if not failures and read_p95 < READ_P95_GOAL_MS else 'NOT met'}"
    )
    for line in failures[:10]:
        print("  ", line)


if __name__ == "__main__":
    main()
