"""Compute backends of a coverage run: who computes the per-site losses, and where.

A backend pairs the per-site loss function (`SiteLossFn`, the signature of
`registry.radio.coverage.losses.site_path_loss`) with the executor that runs the site
and tile tasks (`registry.radio.executors`). "cpu" is the numba sweep on a thread pool
of this process; "dask" is the same sweep on a local Dask cluster; "gpu" the CUDA kernels
(`registry.radio.gpu`, numba-cuda) from a thread pool; "auto" is "gpu" where a CUDA device
is present, else "cpu". Another backend is one more `BACKENDS` entry. Its loss function
returns a `SiteLoss` on the same origin and window as `site_path_loss`'s, keyed by
`loss_key` (the run looks each site group up by that key), with values within the
tolerance it documents (if not bit-identical to the CPU's, runs should not share a cache
directory with CPU runs); it may fall back to `site_path_loss` for models it does not
implement, and must be an importable module-level function, so Dask workers can run it.
Everything after the losses (cache, mosaic, files) is shared.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from registry.errors import ValidationError
from registry.radio.coverage.losses import SiteLossFn, site_path_loss
from registry.radio.coverage.types import SiteLoss
from registry.radio.executors import DaskExecutor, Executor, ThreadExecutor
from registry.terrain import DemSource

ExecutorFactory = Callable[[int | None], AbstractContextManager[Executor]]
"""Opens a backend's own executor for a run, given the `workers` count (None: default)."""


@dataclass(frozen=True)
class Backend:
    """A named way to compute: the per-site loss, and the executor it runs on by default."""

    site_loss: SiteLossFn
    executor: ExecutorFactory


@contextlib.contextmanager
def thread_pool(workers: int | None) -> Iterator[Executor]:
    """A `ThreadExecutor` of `workers` threads (the numba and GPU kernels release the GIL)."""
    yield ThreadExecutor(workers)


@contextlib.contextmanager
def local_dask_cluster(workers: int | None) -> Iterator[Executor]:
    """A `DaskExecutor` on a `LocalCluster` of `workers` processes, closed after the run."""
    with DaskExecutor(n_workers=workers) as executor:
        yield executor


def gpu_site_path_loss(dem: DemSource, x_m: float, y_m: float, **kw: Any) -> SiteLoss:
    """`site_path_loss` on the CUDA kernels (the same losses within 0.1 dB, see the tests)."""
    return site_path_loss(dem, x_m, y_m, backend="gpu", **kw)


BACKENDS: dict[str, Backend] = {
    "cpu": Backend(site_path_loss, thread_pool),
    "dask": Backend(site_path_loss, local_dask_cluster),
    "gpu": Backend(gpu_site_path_loss, thread_pool),
}
"""Backends by the name `compute_coverage(backend=...)` takes."""


@contextlib.contextmanager
def open_backend(
    name: str, workers: int | None, executor: Executor | None
) -> Iterator[tuple[SiteLossFn, Executor]]:
    """The loss function and executor of a run: the named backend's, or its loss function on
    a given `executor` (one already open, e.g. a Dask client shared by several runs)."""
    if name == "auto":
        from registry.radio import gpu

        name = "gpu" if gpu.device_present() else "cpu"
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
