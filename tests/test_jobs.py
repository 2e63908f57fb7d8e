"""Background jobs live in the database: any gunicorn worker answers a poll, a job whose
process died reads ``interrupted`` and runs again, jobs can be cancelled, and
`flask jobs worker` runs them in processes of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from registry import create_app, jobs
from registry.jobs import JobContext
from registry.models import JOB_STATES, Job
from tests.conftest import TEST_COVERAGE, write_dem
from tests.test_serving import _setup, gunicorn


def _sessions(app: Any) -> Any:
    return app.extensions["registry"]["sessions"]


@pytest.mark.slow
def test_every_gunicorn_worker_answers_every_poll(db_url: str, tmp_path: Path) -> None:
    token = _setup(db_url, tmp_path)
    write_dem(tmp_path / "data")
    settings = {k: str(v) for k, v in TEST_COVERAGE.items()}
    with gunicorn(db_url, tmp_path, workers=2, settings=settings) as (_proc, base):
        auth = {"Authorization": f"Bearer {token}"}
        started = requests.post(base + "/api/v1/coverage", headers=auth, timeout=30)
        assert started.status_code == 202
        url = base + started.headers["Location"]
        polls = [requests.get(url, timeout=30) for _ in range(50)]  # a new connection each
        assert [r.status_code for r in polls] == [200] * 50
        deadline = time.monotonic() + 240
        while (job := requests.get(url, timeout=30).json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert job["status"] == "done" and job["progress"] == 1.0, job
        assert job["owner"].startswith("editor") and job["result"]["sectors"] == 3


def test_a_second_process_sees_the_job_and_its_end(app: Any, loaded: Any, dem: Path) -> None:
    job_id = jobs.start(app, "coverage", {}, owner="editor")
    other = create_app({"DATABASE_URL": app.config["DATABASE_URL"], **_paths(app)})
    done = jobs.wait(_sessions(other), other.config, job_id, timeout_s=120)
    assert done["status"] == "done" and done["result"]["sectors"] == 3
    other.extensions["registry"]["engine"].dispose()


def _paths(app: Any) -> dict[str, Any]:
    return {k: app.config[k] for k in ("DATA_DIR", "MAPS_DIR", *TEST_COVERAGE)}


def test_a_job_whose_process_died_is_interrupted_and_runs_again(
    app: Any, loaded: Any, dem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = jobs.submit(_sessions(app), "coverage", {}, owner="editor")
    config = {"DATABASE_URL": app.config["DATABASE_URL"], **_paths(app)}
    script = (
        "import json, sys; from registry import create_app, jobs; "
        "app = create_app(json.loads(sys.argv[1])); "
        "jobs.run(app, jobs.claim(app.extensions['registry']['sessions']))"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(config)], cwd=os.getcwd())
    deadline = time.monotonic() + 120
    while jobs.get(_sessions(app), app.config, job_id)["status"] == "queued":
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # the process dies mid-job
    proc.wait()
    assert jobs.get(_sessions(app), app.config, job_id)["status"] == "running"  # not yet stale
    monkeypatch.setattr(jobs, "STALE_AFTER_S", 0.0)
    time.sleep(0.05)
    assert jobs.get(_sessions(app), app.config, job_id)["status"] == "interrupted"
    assert jobs.mark_interrupted(_sessions(app), app.config) == 1
    with _sessions(app)() as session:
        assert session.get_one(Job, job_id).state == "interrupted"  # recorded, never running
    monkeypatch.setattr(jobs, "STALE_AFTER_S", 30.0)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {app.tokens['editor']}"}
    again = client.post(f"/api/v1/jobs/{job_id}/rerun", headers=auth)
    assert again.status_code == 202 and again.get_json()["rerun_of"] == job_id
    new_id = again.get_json()["id"]
    assert jobs.wait(_sessions(app), app.config, new_id, timeout_s=120)["status"] == "done"
    assert client.post(f"/api/v1/jobs/{new_id}/rerun", headers=auth).status_code == 409


def _slow(ctx: JobContext) -> dict[str, Any]:
    for i in range(2000):
        ctx.progress(i, 2000, "counting")
        time.sleep(0.005)
    return {"counted": 2000}


def test_cancel_a_queued_and_a_running_job(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(jobs.KINDS, "slow", _slow)
    monkeypatch.setattr(jobs, "HEARTBEAT_S", 0.05)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {app.tokens['editor']}"}
    queued = jobs.submit(_sessions(app), "slow", {}, owner="editor")  # no runner picks it up
    r = client.post(f"/api/v1/jobs/{queued}/cancel", headers=auth)
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert client.post(f"/api/v1/jobs/{queued}/cancel", headers=auth).status_code == 409
    viewer = {"Authorization": f"Bearer {app.tokens['viewer']}"}
    assert client.post(f"/api/v1/jobs/{queued}/rerun", headers=viewer).status_code == 403

    running = jobs.start(app, "slow", {}, owner="editor")
    deadline = time.monotonic() + 30
    while jobs.get(_sessions(app), app.config, running)["done"] < 10:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.post(f"/api/v1/jobs/{running}/cancel", headers=auth).status_code == 200
    ended = jobs.wait(_sessions(app), app.config, running, timeout_s=30)
    assert ended["status"] == "cancelled" and 10 <= ended["done"] < 2000
    assert client.get(f"/api/v1/jobs/{'x' * 40}").status_code == 404


@pytest.mark.slow
def test_the_worker_runs_queued_jobs_in_its_own_processes(app: Any, loaded: Any, dem: Path) -> None:
    auth = {"Authorization": f"Bearer {app.tokens['editor']}"}
    app = create_app(
        {"DATABASE_URL": app.config["DATABASE_URL"], "JOBS_RUNNER": "worker", **_paths(app)}
    )
    client = app.test_client()
    started = client.post("/api/v1/coverage", headers=auth).get_json()
    time.sleep(0.5)
    assert jobs.get(_sessions(app), app.config, started["id"])["status"] == "queued"
    result = app.test_cli_runner().invoke(args=["jobs", "worker", "--once", "--processes", "2"])
    assert result.exit_code == 0 and "Ran 1 job(s)" in result.output, result.output
    done = jobs.get(_sessions(app), app.config, started["id"])
    assert done["status"] == "done" and done["result"]["sectors"] == 3
    with _sessions(app)() as session:
        worker = session.get_one(Job, started["id"]).worker or ""
    assert not worker.endswith(f":{os.getpid()}")  # another process ran it
    listed = app.test_cli_runner().invoke(args=["jobs", "list"]).output
    assert started["id"] in listed and "done" in listed
    app.extensions["registry"]["engine"].dispose()


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("JOBS_RUNNER", "celery", "REGISTRY_JOBS_RUNNER"),
        ("SITING_TARGET_CLASS", "data_only", "REGISTRY_SITING_TARGET_CLASS"),
        ("COVERAGE_MODEL", "okumura", "unknown model"),
        ("COVERAGE_ANALYSIS_STEP", 2, "analysis_step"),
    ],
)
def test_a_misconfigured_app_does_not_start(
    sqlite_url: str, setting: str, value: Any, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        create_app({"DATABASE_URL": sqlite_url, setting: value})


def test_job_answers_match_the_openapi_document(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every state a job can be in, and the cancel and re-run answers, are what the document
    says (schemathesis seldom reaches a cancelled or re-run job)."""
    import jsonschema

    monkeypatch.setitem(jobs.KINDS, "slow", _slow)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {app.tokens['editor']}"}
    spec = client.get("/api/v1/openapi.json").get_json()

    def schema(path: str, method: str, status: str) -> Any:
        content = spec["paths"][path][method]["responses"][status]["content"]
        return content["application/json"]["schema"]

    queued = jobs.submit(_sessions(app), "slow", {}, owner="editor")
    cancelled = client.post(f"/api/v1/jobs/{queued}/cancel", headers=auth)
    jsonschema.validate(cancelled.get_json(), schema("/api/v1/jobs/{job_id}/cancel", "post", "200"))
    again = client.post(f"/api/v1/jobs/{queued}/rerun", headers=auth)
    assert again.status_code == 202
    jsonschema.validate(again.get_json(), schema("/api/v1/jobs/{job_id}/rerun", "post", "202"))
    for state in JOB_STATES:
        with _sessions(app)() as session, session.begin():
            session.get_one(Job, queued).state = state
        answer = client.get(f"/api/v1/jobs/{queued}").get_json()
        jsonschema.validate(answer, schema("/api/v1/jobs/{job_id}", "get", "200"))
