"""Production serving under gunicorn: settings, headers, and a crash in the middle of a large
import (SIGKILL) that leaves the registry exactly as it was, then serves again on restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select, text

from registry import create_app, db, io, store
from registry.models import LAYERS, Audit
from tests.conftest import add_user, sample_layers

pytestmark = pytest.mark.slow
SECRET = "s" * 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(
    db_url: str,
    tmp_path: Path,
    *,
    secret: str | None = SECRET,
    workers: int = 2,
    settings: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``gunicorn registry.wsgi:app`` on 127.0.0.1, as the README runs it; killed at the end."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(
        REGISTRY_DATABASE_URL=db_url, REGISTRY_DATA_DIR=str(tmp_path / "data"), FLASK_DEBUG="1"
    )  # ignored in production: debug stays off
    env.update({f"REGISTRY_{k}": v for k, v in (settings or {}).items()})
    if secret:
        env["REGISTRY_SECRET_KEY"] = secret
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "300",
            "registry.wsgi:app",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                requests.get(base + "/api/v1/", timeout=20)
                break
            except requests.RequestException:
                time.sleep(0.2)
        yield proc, base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _setup(db_url: str, tmp_path: Path) -> str:
    """The sample registry plus an editor; returns the editor's token."""
    app = create_app(
        {"DATABASE_URL": db_url, "SECRET_KEY": SECRET, "DATA_DIR": str(tmp_path / "data")}
    )
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        store.import_layers(session, sample_layers(), actor="test", area_bbox=None)
    token = add_user(app, "editor", "editor")
    app.extensions["registry"]["engine"].dispose()
    return token


def _snapshot(db_url: str) -> dict[str, Any]:
    """Everything stored: every layer exported as GeoJSON, and the audit log's size."""
    engine = db.make_engine(db_url)
    with db.session_factory(engine)() as session:
        snap: dict[str, Any] = {m.layer: io.export_geojson(session, m.layer) for m in LAYERS}
        snap["audit"] = session.scalar(select(func.count()).select_from(Audit))
    engine.dispose()
    return snap


def test_production_settings_and_headers(db_url: str, tmp_path: Path) -> None:
    token = _setup(db_url, tmp_path)
    with gunicorn(db_url, tmp_path, secret=None, workers=1) as (proc, _base):
        out = proc.communicate(timeout=60)[0].decode()
        assert proc.returncode != 0 and "REGISTRY_SECRET_KEY is not set" in out
    with gunicorn(db_url, tmp_path) as (_proc, base):
        r = requests.get(base + "/records/sites", timeout=10)
        assert r.status_code == 200 and "Bình Lư" in r.text
        assert "nonce-" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        missing = requests.get(base + "/api/v1/sites/NOPE", timeout=10)
        assert missing.status_code == 404 and "Traceback" not in missing.text
        # the session cookie (it carries the sign-in form's CSRF token) is HTTPS-only
        cookie = requests.get(base + "/login", timeout=10).headers["Set-Cookie"]
        assert all(flag in cookie for flag in ("Secure", "HttpOnly", "SameSite=Lax"))
        r = requests.patch(
            base + "/api/v1/sites/VT-BL-01",
            json={"tower_height_m": 35},
            headers={"Authorization": f"Bearer {token}", "If-Match": '"1"'},
            timeout=10,
        )
        assert r.status_code == 200


def _writing(db_url: str, sqlite_path: Path | None) -> bool:
    """True once the server is writing rows of the import (uncommitted)."""
    if sqlite_path is not None:
        wal = sqlite_path.with_name(sqlite_path.name + "-wal")
        return wal.exists() and wal.stat().st_size > 2_000_000
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        n = conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'active' AND query ~* '^\\s*(insert|copy)' AND pid <> pg_backend_pid()"
            )
        )
    engine.dispose()
    return bool(n)


def test_sigkill_in_the_middle_of_an_import_loses_nothing(db_url: str, tmp_path: Path) -> None:
    token = _setup(db_url, tmp_path)
    before = _snapshot(db_url)
    n = 30_000
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Point",
                "coordinates": [103.60 + (i % 200) * 0.0005, 22.30 + (i // 200) * 0.0003],
            },
            "properties": {  # a grid over Bình Lư (a few points fall just outside the commune)
                "code": f"V-BULK-{i:05d}",
                "name": f"Bản Thử {i}",
                "commune_code": "03390",
                "population": 10 + i % 90,
                "households": 3,
                "synthetic": True,
            },
        }
        for i in range(n)
    ]
    payload = json.dumps(
        {"type": "FeatureCollection", "name": "villages", "features": features}
    ).encode()
    sqlite_path = Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite") else None
    with gunicorn(db_url, tmp_path, workers=1) as (proc, base):
        answer: dict[str, Any] = {}

        def upload() -> None:
            try:
                answer["r"] = requests.post(
                    base + "/api/v1/import?allow_outside_area=true",
                    files={"file": ("v.geojson", payload)},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=300,
                )
            except requests.RequestException as exc:
                answer["error"] = exc

        sender = threading.Thread(target=upload)
        sender.start()
        deadline = time.monotonic() + 240
        while not _writing(db_url, sqlite_path):
            assert time.monotonic() < deadline and "r" not in answer, answer
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        sender.join(timeout=60)
        assert "error" in answer, "the import finished before the kill"
    assert _snapshot(db_url) == before  # exactly as before the import
    with gunicorn(db_url, tmp_path, workers=1) as (_proc, base):
        r = requests.get(base + "/api/v1/villages", timeout=10)
        assert r.status_code == 200 and r.json()["numberMatched"] == 2
        again = requests.post(
            base + "/api/v1/import?allow_outside_area=true",
            files={"file": ("v.geojson", payload)},
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
        )
        assert again.status_code == 200 and again.json()["created"] == {"villages": n}
