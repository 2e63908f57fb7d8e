"""Background jobs with visible progress (coverage runs, large imports).

One worker thread per process runs jobs in order, so long work never blocks a request; the
job's progress and outcome are kept in memory and read through the API. (A restart forgets
finished jobs; their outputs — rasters, records — are on disk and in the database.)
"""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from registry.errors import RegistryError

log = logging.getLogger(__name__)

#: A job body: called with a progress callback ``progress(done, total, message="")``.
JobBody = Callable[[Callable[..., None]], dict[str, Any]]


@dataclass
class Job:
    id: str
    kind: str
    status: str = "queued"  # queued | running | done | failed
    done: int = 0
    total: int = 0
    message: str = ""
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        fraction = self.done / self.total if self.total else (1.0 if self.status == "done" else 0.0)
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "progress": round(fraction, 4),
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class JobRunner:
    """Runs submitted jobs one after another on a background thread."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, body: JobBody) -> Job:
        job = Job(id=uuid.uuid4().hex, kind=kind)
        with self._lock:
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, body)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def wait(self, job_id: str, timeout_s: float | None = None) -> Job:
        """Block until the job has finished (for the CLI and tests)."""
        done = threading.Event()
        self._pool.submit(done.set)
        done.wait(timeout_s)
        job = self.get(job_id)
        assert job is not None
        return job

    @staticmethod
    def _run(job: Job, body: JobBody) -> None:
        def progress(done: int, total: int, message: str = "") -> None:
            job.done, job.total = done, total
            if message:
                job.message = message

        job.status = "running"
        try:
            job.result = body(progress)
            job.status = "done"
        except RegistryError as exc:
            job.status, job.error = "failed", exc.to_dict()
        except Exception as exc:  # a job must never take the worker down silently
            log.error("job %s failed: %s", job.id, traceback.format_exc())
            job.status, job.error = "failed", {"error": type(exc).__name__, "message": str(exc)}
        finally:
            job.finished_at = datetime.now(UTC)
