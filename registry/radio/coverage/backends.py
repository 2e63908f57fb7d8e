"""Compute backends of a coverage run: who computes the per-site losses, and where.

A backend pairs the per-site loss function (`SiteLossFn`, the signature of
`registry.radio.coverage.losses.site_path_loss`) with the executor that runs the site
and tile tasks (`registry.radio.executors`). "cpu" is the numba sweep on a thread pool
of this process; "dask" is the same sweep on a local Dask cluster. Another backend (a
GPU loss kernel, say) is one more `BACKENDS` entry: its loss function must return the
same `SiteLoss` as `site_path_loss` (same key, origin and window; values within the
tolerance it documents) and be an importable module-level function, so Dask workers
can run it. Everything after the losses (cache, mosaic, files) is shared.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from registry.errors import ValidationError
from registry.radio.coverage.losses import SiteLossFn, site_path_loss
from registry.radio.executors import DaskExecutor, Executor, ThreadExecutor

ExecutorFactory = Callable[[int | None], AbstractContextManager[Executor]]
"""Opens a backend's own executor for a run, given the `workers` count (None: default)."""


@dataclass(frozen=True)
class Backend:
    """A named way to compute: the per-site loss, and the executor it runs on by default."""

    site_loss: SiteLossFn
    executor: ExecutorFactory


@contextlib.contextmanager
def _threads(workers: int | None) -> Iterator[Executor]:
    yield ThreadExecutor(workers)


@contextlib.contextmanager
def _local_dask(workers: int | None) -> Iterator[Executor]:
    with DaskExecutor(n_workers=workers) as executor:
        yield executor


BACKENDS: dict[str, Backend] = {
    "cpu": Backend(site_path_loss, _threads),
    "dask": Backend(site_path_loss, _local_dask),
}
"""Backends by the name `compute_coverage(backend=...)` takes."""


@contextlib.contextmanager
def open_backend(
    name: str, workers: int | None, executor: Executor | None
) -> Iterator[tuple[SiteLossFn, Executor]]:
    """The loss function and executor of a run: the named backend's, or its loss function on
    a given `executor` (one already open, e.g. a Dask client shared by several runs)."""
    backend = BACKENDS.get(name)
    if backend is None:
        known = ", ".join(sorted(BACKENDS))
        raise ValidationError(
            f"unknown coverage backend {name!r}",
            details=[{"field": "backend", "reason": f"one of {known}"}],
        )
    if executor is not None:
        yield backend.site_loss, executor
        return
    with backend.executor(workers) as own:
        yield backend.site_loss, own
