"""Time to load the demo's live map page in Chromium, with every layer drawn.

Run ``flask --app registry demo`` first; this reads the same instance as the app (settings from
``REGISTRY_*`` variables, e.g. ``REGISTRY_DATABASE_URL``). The app is served on 127.0.0.1 by a
WSGI server in this process and Debian's Chromium (``/usr/bin/chromium``, or
``REGISTRY_CHROMIUM``) loads ``/map`` with every request outside the app refused (no internet:
no base-map tiles). One run is the time from navigation start to: Leaflet's map ready, the
layer control drawn, the vector markers and lines drawn and the coverage overlay image decoded.
The first (cold) load builds the map and fills the cache; the next ``--runs`` loads are timed,
each in a fresh browser context (no HTTP cache). Goal: median < 3 s.

    python benchmarks/map_page.py [--runs 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import sys
import threading
import time

from playwright.sync_api import sync_playwright
from sqlalchemy import func, select
from werkzeug.serving import make_server

from registry import create_app
from registry.models import Site

CHROMIUM = os.environ.get("REGISTRY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GOAL_S = 3.0
#: True once the page is drawn: map ready, layer control, markers and the overlay image.
DRAWN = """() => window.registryMapReady === true
  && document.querySelector('.leaflet-control-layers') !== null
  && document.querySelectorAll('path.leaflet-interactive').length > 0
  && Array.from(document.querySelectorAll('img.leaflet-image-layer'))
          .every(img => img.complete && img.naturalWidth > 0)"""


def load_once(browser: object, url: str) -> tuple[float, int]:
    """Seconds from navigation start until the map is drawn, and the vector features drawn."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
    page = context.new_page()
    page.goto(url, wait_until="commit", timeout=120_000)
    page.wait_for_function(DRAWN, timeout=120_000, polling=20)
    elapsed_ms = page.evaluate("performance.now()")
    features = page.evaluate("document.querySelectorAll('path.leaflet-interactive').length")
    context.close()
    return elapsed_ms / 1000, features


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    app = create_app()
    with app.extensions["registry"]["sessions"]() as session:
        sites = session.scalar(select(func.count()).select_from(Site))
    if not sites:
        print("The registry is empty: run `flask --app registry demo` first.", file=sys.stderr)
        return 2
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/map"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            started = time.perf_counter()
            cold, features = load_once(browser, url)
            print(f"registry: {sites} sites; map page {url}")
            print(
                f"cold load (builds and caches the map): {cold:.2f} s "
                f"(wall {time.perf_counter() - started:.2f} s), {features} vector features"
            )
            times = [load_once(browser, url)[0] for _ in range(args.runs)]
            browser.close()
    finally:
        server.shutdown()
    median, worst = statistics.median(times), max(times)
    print("runs (s): " + ", ".join(f"{t:.2f}" for t in times))
    print(
        f"median {median:.2f} s, max {worst:.2f} s; goal < {GOAL_S:.0f} s: "
        f"{'met' if median < GOAL_S else 'NOT met'} (ratio to goal {median / GOAL_S:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
