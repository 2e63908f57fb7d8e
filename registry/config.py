"""Settings: defaults here, then ``REGISTRY_*`` environment variables, then the test config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Lai Châu province bounding box (lon/lat) with a ~10 km margin: the default registry area.
LAI_CHAU_BBOX = (102.22, 21.58, 104.09, 22.92)


def defaults(instance_path: Path) -> dict[str, object]:
    """Default settings; every path lives under the instance folder unless overridden."""
    return {
        "DATABASE_URL": f"sqlite:///{instance_path / 'registry.sqlite'}",
        "DATA_DIR": str(instance_path / "data"),
        "MAPS_DIR": str(Path(__file__).resolve().parent.parent / "maps"),
        # (min lon, min lat, max lon, max lat) that new records must fall in unless overridden.
        "AREA_BBOX": LAI_CHAU_BBOX,
        "PAGE_SIZE": 100,
        "MAX_PAGE_SIZE": 1000,
        "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
        # Accounts: whether reading (pages and API) needs a signed-in viewer; writes always
        # need an editor. Session cookies are HTTPS-only, script-proof and same-site.
        "READ_REQUIRES_LOGIN": False,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": 8 * 3600,
        "JSON_SORT_KEYS": False,
        # Behind a reverse proxy: how many proxies set each X-Forwarded-For / -Proto / -Host /
        # -Port / -Prefix header (werkzeug's ProxyFix); 0 = ignore the header (no proxy, or one
        # that does not set it). Client addresses (sign-in throttling) and absolute links
        # follow the trusted headers.
        "PROXY_FIX_X_FOR": 0,
        "PROXY_FIX_X_PROTO": 0,
        "PROXY_FIX_X_HOST": 0,
        "PROXY_FIX_X_PORT": 0,
        "PROXY_FIX_X_PREFIX": 0,
        # Coverage: path-loss model (ITU-R P.1812-8: the stable one, see README "Coverage and
        # readiness"), analysis grid step in DEM cells (odd; 3 = 90 m cells on the 30 m DEM,
        # profiles still sampled at 30 m) and the radius computed around each site.
        "COVERAGE_MODEL": "p1812",
        "COVERAGE_ANALYSIS_STEP": 3,
        "COVERAGE_MAX_RADIUS_M": 20_000.0,
        # Where coverage tasks run: None = threads in this process; "local" = a Dask cluster
        # started on this machine per run; else a running Dask scheduler's address
        # ("tcp://10.0.0.5:8786"; its workers need this package, and DATA_DIR shared for the
        # loss cache to be reused). `flask coverage compute --dask [ADDRESS]` overrides it.
        "DASK_SCHEDULER": None,
        # Who runs background jobs: "thread" = a thread of each web process (the embedded
        # default); "worker" = only `flask jobs worker` processes (production).
        "JOBS_RUNNER": "thread",
        # Seconds a superseded coverage version stays on disk for requests that resolved it
        # before a recompute switched versions (the one just replaced always stays).
        "COVERAGE_VERSION_GRACE_S": 600.0,
        # The class siting lifts demand points to (a live 720p stream).
        "SITING_TARGET_CLASS": "hd_live",
        # Readiness assumptions (see registry.readiness.ReadinessParams).
        "READINESS_CONCURRENT_STREAMS_PER_CELL": 1,
        "READINESS_BACKHAUL_SHARE_FOR_STREAMS": 0.5,
        "READINESS_WALKING_RADIUS_M": 1_500.0,
        # Confidence of the verdicts (registry.confidence): p at or above which the wanted class
        # is "likely", below which "unlikely" (between: "borderline", test on site first); the
        # neighbourhood whose RSRP spread is the terrain sensitivity; the location sigma:
        # "shadow" (the uplink budget's 8 dB, TR 38.901 RMa NLOS), "p1812" (ITU-R P.1812-8
        # §4.7 sigma_L) or a number of dB.
        "READINESS_LIKELY_MIN_P": 0.8,
        "READINESS_UNLIKELY_MAX_P": 0.2,
        "READINESS_TERRAIN_RADIUS_M": 150.0,
        "READINESS_LOCATION_SIGMA": "shadow",
    }


def check(settings: Mapping[str, Any]) -> None:
    """Refuse a misconfigured app at start (naming the setting), not with a 500 per request."""
    from registry.radio.coverage import CoverageParams
    from registry.radio.linkbudget import LIVE_CLASSES

    problems = []
    if settings["JOBS_RUNNER"] not in ("thread", "worker"):
        problems.append("REGISTRY_JOBS_RUNNER must be thread or worker")
    if settings["SITING_TARGET_CLASS"] not in LIVE_CLASSES:
        problems.append(f"REGISTRY_SITING_TARGET_CLASS must be one of {', '.join(LIVE_CLASSES)}")
    try:
        CoverageParams(
            model=settings["COVERAGE_MODEL"],
            analysis_step=int(settings["COVERAGE_ANALYSIS_STEP"]),
            max_radius_m=float(settings["COVERAGE_MAX_RADIUS_M"]),
        )
    except (TypeError, ValueError) as exc:
        problems.append(f"REGISTRY_COVERAGE_*: {exc}")
    if problems:
        raise ValueError("bad settings: " + "; ".join(problems))
