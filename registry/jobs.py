"""Background jobs (coverage runs, imports, siting, scenario previews) kept in the database.

A job is a row of the ``jobs`` table: its kind, its owner, the parameters that run it (and can
re-run it), its state and its result or error, so any worker process answers a poll. While it
runs, the process running it writes its progress and a heartbeat to a small file under
``DATA_DIR/jobs`` (not to the database: an SQLite import holds the only write lock for its whole
transaction); a running job whose heartbeat is older than ``STALE_AFTER_S`` is reported as
``interrupted`` (its process died) and can be re-run.

Who runs jobs: ``JOBS_RUNNER = "thread"`` (the embedded default) runs them on one background
thread of each web process; with ``"worker"`` the web processes only queue them and
``flask jobs worker`` claims each queued row (``UPDATE … WHERE state = 'queued'``) and runs it
in a separate process.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from registry.errors import ConflictError, NotFoundError, RegistryError, ValidationError
from registry.models import JOB_FINAL_STATES, Job

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0  # how often a running job's process stamps its heartbeat
STALE_AFTER_S = 30.0  # a running job without a heartbeat for this long has lost its process
PROGRESS_EVERY_S = 0.5  # progress is written at most this often
WORKER_POLL_S = 1.0  # how often `flask jobs worker` looks for queued jobs


class JobCancelled(RegistryError):
    """The job was cancelled while it ran (raised from its progress callback)."""

    status = 409


@dataclass
class JobContext:
    """What a job body gets: its parameters, the app's settings and sessions, and progress."""

    job_id: str
    params: dict[str, Any]
    config: Mapping[str, Any]
    sessions: sessionmaker[Session]
    progress: Callable[..., None]


#: A job body: ``body(context) -> result`` (a JSON-able dict).
JobBody = Callable[[JobContext], dict[str, Any]]
KINDS: dict[str, JobBody] = {}


def kind(name: str) -> Callable[[JobBody], JobBody]:
    """Register a job body under ``name`` (the body must be importable by a worker process)."""

    def register(body: JobBody) -> JobBody:
        KINDS[name] = body
        return body

    return register


def _now() -> datetime:
    return datetime.now(UTC)


def _progress_file(config: Mapping[str, Any], job_id: str) -> Path:
    return Path(config["DATA_DIR"]) / "jobs" / f"{job_id}.json"


def _read_progress(config: Mapping[str, Any], job_id: str) -> dict[str, Any]:
    try:
        return dict(json.loads(_progress_file(config, job_id).read_text("utf-8")))
    except (OSError, ValueError):
        return {}


def _write_progress(config: Mapping[str, Any], job_id: str, state: dict[str, Any]) -> None:
    """Replace the progress file in one step (readers see the old or the new one, never half)."""
    path = _progress_file(config, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(state), "utf-8")
    os.replace(tmp, path)


def _is_stale(job: Job, progress: Mapping[str, Any], now: datetime) -> bool:
    beat = progress.get("heartbeat_at")
    last = datetime.fromisoformat(beat) if beat else (job.started_at or job.created_at)
    return job.state == "running" and now - last > timedelta(seconds=STALE_AFTER_S)


def describe(job: Job, config: Mapping[str, Any]) -> dict[str, Any]:
    """The job as the API shows it; a running job whose process died reads ``interrupted``."""
    progress = _read_progress(config, job.id) if job.state == "running" else {}
    state = "interrupted" if _is_stale(job, progress, _now()) else job.state
    done, total = progress.get("done", job.done), progress.get("total", job.total)
    fraction = done / total if total else (1.0 if state == "done" else 0.0)
    stamp = {
        k: getattr(job, k).isoformat() if getattr(job, k) else None
        for k in ("created_at", "started_at", "finished_at")
    }
    return {
        "id": job.id,
        "kind": job.kind,
        "owner": job.owner,
        "status": state,
        "done": done,
        "total": total,
        "progress": round(min(1.0, fraction), 4),
        "message": progress.get("message", job.message),
        "cancel_requested": job.cancel_requested,
        "result": job.result,
        "error": job.error,
        "rerun_of": job.rerun_of,
        **stamp,
    }


def submit(
    sessions: sessionmaker[Session],
    kind_name: str,
    params: dict[str, Any],
    *,
    owner: str,
    rerun_of: str | None = None,
) -> str:
    """Queue a job; returns its id."""
    if kind_name not in KINDS:
        raise ValidationError("bad job kind", details=[{"field": "kind", "reason": kind_name}])
    job_id = uuid.uuid4().hex
    with sessions() as session, session.begin():
        session.add(
            Job(
                id=job_id,
                kind=kind_name,
                owner=owner,
                state="queued",
                params=params,
                rerun_of=rerun_of,
            )
        )
    return job_id


def _get(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id) if len(job_id) <= 32 else None
    if job is None:
        raise NotFoundError(f"no job {job_id!r}")
    return job


def get(sessions: sessionmaker[Session], config: Mapping[str, Any], job_id: str) -> dict[str, Any]:
    with sessions() as session:
        return describe(_get(session, job_id), config)


def recent(
    sessions: sessionmaker[Session], config: Mapping[str, Any], *, limit: int = 50
) -> list[dict[str, Any]]:
    """The latest jobs, newest first."""
    with sessions() as session:
        rows = session.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit))
        return [describe(job, config) for job in rows]


def cancel(sessions: sessionmaker[Session], config: Mapping[str, Any], job_id: str) -> None:
    """Cancel a queued job now, a running one at its next progress step; a finished job: 409."""
    with sessions() as session, session.begin():
        job = _get(session, job_id)
        state = describe(job, config)["status"]
        if state in JOB_FINAL_STATES:
            raise ConflictError(f"job {job_id} has already ended ({state})")
        if job.state == "queued":
            job.state, job.finished_at = "cancelled", _now()
        job.cancel_requested = True


def rerun(app: Any, job_id: str, *, owner: str) -> str:
    """Queue a new job with the parameters of one that failed, was cancelled or interrupted."""
    sessions = app.extensions["registry"]["sessions"]
    with sessions() as session:
        job = _get(session, job_id)
        state = describe(job, app.config)["status"]
        kind_name, params = job.kind, job.params
    if state not in ("failed", "cancelled", "interrupted"):
        raise ConflictError(
            f"job {job_id} is {state}: only a failed, cancelled or interrupted job can be re-run"
        )
    return start(app, kind_name, params, owner=owner, rerun_of=job_id)


def _interrupt(sessions: sessionmaker[Session], job_id: str, why: str) -> None:
    with sessions() as session, session.begin():
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "running")
            .values(
                state="interrupted",
                finished_at=_now(),
                error={"error": "Interrupted", "message": why},
            )
        )


def mark_interrupted(sessions: sessionmaker[Session], config: Mapping[str, Any]) -> int:
    """Record as ``interrupted`` every running job whose process died; returns how many."""
    now = _now()
    with sessions() as session:
        running = list(session.scalars(select(Job).where(Job.state == "running")))
        stale = [job.id for job in running if _is_stale(job, _read_progress(config, job.id), now)]
    for job_id in stale:
        _interrupt(sessions, job_id, "its process stopped sending a heartbeat")
    return len(stale)


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(sessions: sessionmaker[Session]) -> str | None:
    """Take the oldest queued job for this process (one UPDATE, so two workers never share)."""
    worker = _this_process()
    with sessions() as session:
        candidates = list(
            session.scalars(
                select(Job.id).where(Job.state == "queued").order_by(Job.created_at).limit(5)
            )
        )
    for job_id in candidates:
        with sessions() as session, session.begin():
            taken = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "queued")
                .values(state="running", worker=worker, started_at=_now())
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return job_id
    return None


def run(app: Any, job_id: str) -> None:
    """Run a claimed job to its end, with a heartbeat; its outcome goes to its row."""
    config, sessions = app.config, app.extensions["registry"]["sessions"]
    with sessions() as session, session.begin():
        job = _get(session, job_id)
        body, params = KINDS[job.kind], dict(job.params)
        job.worker = _this_process()
    state: dict[str, Any] = {"done": 0, "total": 0, "message": ""}
    stop = threading.Event()
    cancelled = threading.Event()
    lock = threading.Lock()

    def beat() -> None:
        with lock:
            _write_progress(config, job_id, {**state, "heartbeat_at": _now().isoformat()})

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_S):
            beat()
            with sessions() as session:
                if session.scalar(select(Job.cancel_requested).where(Job.id == job_id)):
                    cancelled.set()

    last = [0.0]

    def progress(done: int, total: int, message: str = "") -> None:
        if cancelled.is_set():
            raise JobCancelled("cancelled while running")
        with lock:
            state.update(done=done, total=total, **({"message": message} if message else {}))
        if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            beat()

    beat()
    ticker = threading.Thread(target=heartbeat, name=f"job-{job_id[:8]}-heartbeat", daemon=True)
    ticker.start()
    outcome: dict[str, Any]
    try:
        with app.app_context():
            result = body(JobContext(job_id, params, config, sessions, progress))
        outcome = {"state": "done", "result": result}
    except JobCancelled:
        outcome = {"state": "cancelled"}
    except RegistryError as exc:
        outcome = {"state": "failed", "error": exc.to_dict()}
    except Exception as exc:  # a job must never take its process down silently
        log.error("job %s failed: %s", job_id, traceback.format_exc())
        outcome = {"state": "failed", "error": {"error": type(exc).__name__, "message": str(exc)}}
    finally:
        stop.set()
        ticker.join()
    with sessions() as session, session.begin():
        job = session.get_one(Job, job_id)
        for key, value in outcome.items():
            setattr(job, key, value)
        job.done, job.total, job.message = state["done"], state["total"], state["message"][:200]
        job.finished_at = _now()
    _progress_file(config, job_id).unlink(missing_ok=True)


class ThreadRunner:
    """The embedded runner: one background thread per web process runs queued jobs in order."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-job")

    def kick(self) -> None:
        """Run whatever is queued (called after each submit)."""
        self._pool.submit(self._drain)

    def _drain(self) -> None:
        sessions = self._app.extensions["registry"]["sessions"]
        mark_interrupted(sessions, self._app.config)
        while (job_id := claim(sessions)) is not None:
            run(self._app, job_id)


def start(
    app: Any, kind_name: str, params: dict[str, Any], *, owner: str, rerun_of: str | None = None
) -> str:
    """Queue a job and, with the embedded runner, start running it; returns its id."""
    sessions = app.extensions["registry"]["sessions"]
    job_id = submit(sessions, kind_name, params, owner=owner, rerun_of=rerun_of)
    runner = app.extensions["registry"].get("job_runner")
    if runner is not None:
        runner.kick()
    return job_id


def wait(
    sessions: sessionmaker[Session], config: Mapping[str, Any], job_id: str, *, timeout_s: float
) -> dict[str, Any]:
    """Poll until the job has ended or ``timeout_s`` has passed (CLI and tests)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = get(sessions, config, job_id)
        if found["status"] in JOB_FINAL_STATES or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _child(config: dict[str, Any], job_id: str) -> None:
    """A worker's child process: build the app with the parent's settings, run one job."""
    from registry import create_app

    run(create_app(config), job_id)


def work(app: Any, *, processes: int = 1, once: bool = False) -> int:
    """``flask jobs worker``: claim queued jobs and run each in its own process, up to
    ``processes`` at a time; a child that dies leaves its job ``interrupted``. With ``once``,
    return when the queue is empty. Returns the number of jobs started."""
    sessions, config = app.extensions["registry"]["sessions"], dict(app.config)
    spawn = multiprocessing.get_context("spawn")
    running: dict[str, Any] = {}
    started = 0
    while True:
        for job_id, proc in list(running.items()):
            if not proc.is_alive():
                proc.join()
                del running[job_id]
                if proc.exitcode:  # died before recording an outcome (killed, out of memory)
                    _interrupt(sessions, job_id, f"its process exited with {proc.exitcode}")
        mark_interrupted(sessions, config)
        while len(running) < processes and (claimed := claim(sessions)) is not None:
            proc = spawn.Process(target=_child, args=(config, claimed), name=f"job-{claimed[:8]}")
            proc.start()
            running[claimed] = proc
            started += 1
            log.info("job %s started in process %s", claimed, proc.pid)
        if once and not running:
            return started
        time.sleep(WORKER_POLL_S)
