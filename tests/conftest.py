"""Fixtures: every registry test runs on a real SQLite file and on a real PostGIS.

The PostGIS URL comes from ``REGISTRY_TEST_POSTGIS_URL`` (``scripts/test.sh`` starts a server and
sets it). Without it the PostGIS cases fail, never skip, unless ``REGISTRY_TEST_BACKENDS=sqlite``
explicitly narrows the run (for quick local loops).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rasterio
import requests
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import text
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from registry import accounts, create_app, db
from registry.models import JOB_FINAL_STATES, ROLES, Base, User
from registry.terrain import synthetic_dem

RAW = Path(__file__).resolve().parent.parent / "geodata" / "raw"
BACKENDS = os.environ.get("REGISTRY_TEST_BACKENDS", "sqlite,postgis").split(",")


@pytest.fixture(scope="session")
def postgis_url() -> str:
    url = os.environ.get("REGISTRY_TEST_POSTGIS_URL")
    if not url:
        pytest.fail(
            "REGISTRY_TEST_POSTGIS_URL is not set: run the suite with scripts/test.sh "
            "(it starts PostGIS), or set REGISTRY_TEST_BACKENDS=sqlite on purpose"
        )
    engine = db.make_engine(url)
    db.drop_schema(engine)
    db.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with the migrated schema, made once and copied for each test."""
    path = tmp_path_factory.mktemp("template") / "registry.sqlite"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A new SQLite registry with the migrated schema."""
    path = tmp_path / "registry.sqlite"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    url = request.getfixturevalue("postgis_url")
    engine = db.make_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


#: Every test user's password (hashed once: scrypt is slow on purpose).
PASSWORD = "correct horse battery"
_PASSWORD_HASH = generate_password_hash(PASSWORD)


def add_user(app: Any, username: str, role: str) -> str:
    """A user with ``PASSWORD`` and the given role; returns an API token of theirs."""
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        session.add(
            User(
                username=username,
                role=role,
                password_hash=_PASSWORD_HASH,
                active=True,
                session_epoch=0,
            )
        )
        session.flush()
        return accounts.issue_token(session, username, "tests")[1]


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """The app with users ``admin``, ``editor`` and ``viewer`` (tokens in ``app.tokens``).

    Cookies are not marked Secure here because the test servers speak plain HTTP on 127.0.0.1
    (the production default, Secure, is tested on its own)."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test",
            "SESSION_COOKIE_SECURE": False,
            "MAPS_DIR": str(tmp_path / "maps"),
            "DATA_DIR": str(tmp_path / "data"),
        }
    )
    app.tokens = {role: add_user(app, role, role) for role in ROLES}
    yield app
    app.extensions["registry"]["engine"].dispose()


def with_csrf(app: Any, client: Any) -> Any:
    """The client, sending a valid CSRF token (as the forms' hidden field would) every time."""
    raw = secrets.token_hex(20)
    with client.session_transaction() as cookie:
        cookie["csrf_token"] = raw
    client.environ_base["HTTP_X_CSRFTOKEN"] = URLSafeTimedSerializer(
        app.secret_key, salt="wtf-csrf-token"
    ).dumps(raw)
    return client


def signed_in(app: Any, username: str) -> Any:
    """A test client with ``username``'s session (password typed just now) and a valid CSRF
    token on every request."""
    client = app.test_client()
    with app.app_context(), db.transaction(app.extensions["registry"]["sessions"]) as session:
        user = accounts.get_user(session, username)
        sid = accounts.start_session(session, user, app.permanent_session_lifetime)
    with client.session_transaction() as cookie:
        cookie.update(uid=user.id, epoch=user.session_epoch, sid=sid)
    return with_csrf(app, client)


@pytest.fixture
def client(app: Any) -> Any:
    """The pages as the editor sees them."""
    return signed_in(app, "editor")


@pytest.fixture
def anonymous(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


class Api:
    """A tiny client for the API over real HTTP, sending a token (the editor's by default)."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def as_(self, token: str | None) -> Api:
        """The same server with another token (None: anonymous)."""
        return Api(self.base, token)

    def url(self, path: str) -> str:
        return f"{self.base}/api/v1/{path.lstrip('/')}"

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.http, method)
        return lambda path, **kw: call(self.url(path), timeout=30, **kw)


@pytest.fixture
def api(app: Any) -> Iterator[Api]:
    """The app served by a real WSGI server on 127.0.0.1 (random port)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield Api(f"http://127.0.0.1:{server.server_port}", app.tokens["editor"])
    server.shutdown()
    thread.join()


@functools.cache
def _communes() -> dict[str, Any]:
    return json.loads((RAW / "lai_chau_communes_2025.geojson").read_text("utf-8"))


def _commune(name: str) -> dict[str, Any]:
    feature = copy.deepcopy(
        next(f for f in _communes()["features"] if f["properties"]["name"] == name)
    )
    props = {
        k: feature["properties"][k]
        for k in (
            "code",
            "name",
            "type",
            "population",
            "area_km2",
            "admin_center_lon",
            "admin_center_lat",
            "before_merger",
        )
    }
    return {**props, "province": "Lai Châu", "geometry": feature["geometry"]}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def sample_layers() -> dict[str, list[dict[str, Any]]]:
    """A small registry around Bình Lư and Tân Phong (real communes, made-up records)."""
    binh_lu, tan_phong = _commune("Bình Lư"), _commune("Tân Phong")
    sector = {
        "technology": "4G",
        "band": "B3",
        "freq_mhz": 1842.5,
        "bandwidth_mhz": 20,
        "mech_tilt_deg": 2,
        "elec_tilt_deg": 4,
        "h_beamwidth_deg": 65,
        "v_beamwidth_deg": 8,
        "gain_dbi": 17,
        "tx_power_dbm": 46,
        "height_m": 28,
    }
    return {
        "communes": [binh_lu, tan_phong],
        "fibre_nodes": [
            {
                "code": "FN-CORE",
                "name": "Core Lai Châu",
                "kind": "core",
                "geometry": point(103.46, 22.39),
            },
            {
                "code": "FN-BL",
                "name": "PoP Bình Lư",
                "kind": "pop",
                "geometry": point(103.678, 22.353),
            },
        ],
        "fibre_links": [
            {
                "code": "FL-1",
                "from_node_code": "FN-CORE",
                "to_node_code": "FN-BL",
                "road": "QL4D",
                "capacity_mbps": 10000,
                "status": "active",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[103.46, 22.39], [103.57, 22.37], [103.678, 22.353]],
                },
            }
        ],
        "sites": [
            {
                "code": "VT-BL-01",
                "name": "Bình Lư trung tâm",
                "operator": "452-04",
                "commune_code": binh_lu["code"],
                "tower_height_m": 30,
                "status": "active",
                "backhaul_kind": "fibre",
                "backhaul_capacity_mbps": 1000,
                "fibre_node_code": "FN-BL",
                "geometry": point(103.679, 22.352),
            },
            {
                "code": "VT-TP-01",
                "name": "Tân Phong 1",
                "operator": "452-04",
                "commune_code": tan_phong["code"],
                "tower_height_m": 40,
                "status": "active",
                "backhaul_kind": "satellite",
                "backhaul_capacity_mbps": 20,
                "geometry": point(103.47, 22.40),
            },
        ],
        "sectors": [
            {**sector, "code": "VT-BL-01-1", "site_code": "VT-BL-01", "azimuth_deg": 0},
            {**sector, "code": "VT-BL-01-2", "site_code": "VT-BL-01", "azimuth_deg": 120},
            {**sector, "code": "VT-TP-01-1", "site_code": "VT-TP-01", "azimuth_deg": 240},
        ],
        "villages": [
            {
                "code": "V-BL-1",
                "name": "Bản Nà Khum",
                "commune_code": binh_lu["code"],
                "population": 420,
                "households": 88,
                "synthetic": True,
                "geometry": point(103.672, 22.345),
            },
            {
                "code": "V-TP-1",
                "name": "Thôn Sơn Bình",
                "commune_code": tan_phong["code"],
                "population": 310,
                "households": 64,
                "synthetic": True,
                "geometry": point(103.4834, 22.414),  # inside Tân Phong
            },
        ],
        "sellers": [
            {
                "code": "SEL-1",
                "name": "Lò Thị Mai",
                "village_code": "V-BL-1",
                "products": "Chè;Mật ong",
                "platform": "TikTok Shop",
                "handle": "@maitra",
                "phone_tech": "4G",
                "wanted_class": "hd_live",
                "geometry": point(103.673, 22.346),
            }
        ],
        "events": [
            {
                "code": "EV-1",
                "name": "Phiên livestream Bình Lư",
                "commune_code": binh_lu["code"],
                "start": "2025-11-04T08:00:00+07:00",
                "duration_min": 240,
                "streams": 5,
                "orders": 2500,
                "synthetic": False,
                "geometry": point(103.678, 22.3532),
            }
        ],
        "measurements": [
            {
                "code": "M-1",
                "kind": "speedtest",
                "measured_at": "2025-10-01T10:00:00+07:00",
                "operator": "452-04",
                "technology": "4G",
                "site_code": "VT-BL-01",
                "rsrp_dbm": -95.5,
                "dl_rate_mbps": 35.2,
                "ul_rate_mbps": 6.1,
                "geometry": point(103.675, 22.35),
            }
        ],
    }


@pytest.fixture
def loaded(app: Any) -> dict[str, list[dict[str, Any]]]:
    """The app's registry filled with ``sample_layers()``; returns the layers."""
    from registry import store

    layers = sample_layers()
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        store.import_layers(session, layers, actor="test", area_bbox=app.config["AREA_BBOX"])
    return layers


#: A 45 km × 25 km synthetic DEM (250 m cells) in UTM 48N around Bình Lư and Tân Phong.
DEM_ORIGIN = (330_000.0, 2_490_000.0)


def write_dem(data_dir: Path) -> Path:
    """The test DEM as ``data_dir/dem.tif``."""
    terrain = synthetic_dem(
        (100, 180), cell_size_m=250.0, seed=7, origin_xy=DEM_ORIGIN, relief_m=1500.0, base_m=300.0
    )
    path = data_dir / "dem.tif"
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=180,
        height=100,
        count=1,
        dtype="float32",
        crs=terrain.crs,
        transform=terrain.transform,
    ) as dst:
        dst.write(terrain.elevation_m, 1)
    return path


#: Coverage settings that keep the tests quick on the test DEM.
TEST_COVERAGE = {"COVERAGE_ANALYSIS_STEP": 1, "COVERAGE_MAX_RADIUS_M": 10_000.0}


@pytest.fixture
def dem(app: Any) -> Path:
    path = write_dem(Path(app.config["DATA_DIR"]))
    app.config.update(TEST_COVERAGE)
    return path


def run_job(api: Any, path: str = "coverage", **kw: Any) -> dict[str, Any]:
    """Start a background job over HTTP, follow it to the end and return its result."""
    started = api.post(path, **kw)
    assert started.status_code == 202, started.text
    url = started.headers["Location"]
    for _ in range(600):
        job = api.http.get(api.base + url, timeout=30).json()
        if job["status"] in JOB_FINAL_STATES:
            break
        time.sleep(0.1)
    assert job["status"] == "done", job
    assert job["progress"] == 1.0
    return job["result"]
