"""Where coverage tasks run: a thread pool in this process, or a Dask cluster.

Both executors run ``fn(context, item)`` for every item and yield the results as
they complete. The context (DEM handle, parameters, sector tables) is shared: the
thread pool passes the object itself, Dask scatters it to each worker once, so no
task carries it. Task functions must be importable module-level functions, and with
Dask every worker must import this package (a `LocalCluster` started here does).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Protocol, TypeVar

from registry.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

#: `scheduler` value (setting ``DASK_SCHEDULER``, ``--dask`` without an address) that starts a
#: `LocalCluster` on this machine instead of connecting to a running scheduler.
LOCAL_CLUSTER = "local"


class Executor(Protocol):
    """Runs ``fn(context, item)`` for each item; yields the results in completion order."""

    def map_unordered(
        self, fn: Callable[[C, T], R], context: C, items: Sequence[T]
    ) -> Iterator[R]: ...


class ThreadExecutor:
    """Threads in this process (the numba kernels release the GIL).

    Parameters
    ----------
    workers : int, optional
        Threads (default: CPU count).
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1

    def map_unordered(self, fn: Callable[[C, T], R], context: C, items: Sequence[T]) -> Iterator[R]:
        if not items:
            return
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(fn, context, item) for item in items]
            for future in as_completed(futures):
                yield future.result()


class DaskExecutor:
    """Tasks on a ``dask.distributed`` cluster; use as a context manager.

    Parameters
    ----------
    scheduler_address : str, optional
        Address of a running scheduler (e.g. ``tcp://10.0.0.5:8786``); None starts a
        `LocalCluster` on entry and closes it on exit.
    n_workers : int, optional
        Worker processes of the local cluster, one thread each (default: CPU count).
    processes : bool
        Local workers as processes (True) or as threads of this process (False; no
        transfers, for tests and small runs).
    connect_timeout_s : float
        How long to try a running scheduler before giving up with a clear error.
    """

    def __init__(
        self,
        scheduler_address: str | None = None,
        *,
        n_workers: int | None = None,
        processes: bool = True,
        connect_timeout_s: float = 20.0,
    ) -> None:
        self.scheduler_address = scheduler_address
        self.connect_timeout_s = connect_timeout_s
        self.n_workers = n_workers or os.cpu_count() or 1
        self.processes = processes
        self._stack = contextlib.ExitStack()
        self.client: Any = None

    def __enter__(self) -> DaskExecutor:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise RuntimeError(
                "Dask is not installed: pip install 'lai-chau-registry[dask]'"
            ) from exc
        if self.scheduler_address is None:
            cluster = self._stack.enter_context(
                LocalCluster(
                    n_workers=self.n_workers,
                    threads_per_worker=1,
                    processes=self.processes,
                    dashboard_address=None,
                )
            )
            self.client = self._stack.enter_context(Client(cluster))
        else:
            try:
                client = Client(self.scheduler_address, timeout=self.connect_timeout_s)
            except (OSError, ValueError) as exc:  # refused, timed out, or a malformed address
                raise ServiceUnavailable(
                    f"cannot reach the Dask scheduler at {self.scheduler_address!r}: {exc}",
                    details=[
                        {
                            "field": "DASK_SCHEDULER",
                            "reason": (
                                "no scheduler answers there; start one, fix the address, or use "
                                f"{LOCAL_CLUSTER!r} for a cluster on this machine"
                            ),
                        }
                    ],
                ) from None
            self.client = self._stack.enter_context(client)
        logger.info("dask: %s", self.client)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client = None
        self._stack.close()

    def map_unordered(self, fn: Callable[[C, T], R], context: C, items: Sequence[T]) -> Iterator[R]:
        if self.client is None:
            raise RuntimeError("use DaskExecutor as a context manager (with ... as executor)")
        if not items:
            return
        from distributed import as_completed as dask_as_completed

        shared = self.client.scatter(context, broadcast=True, hash=False)
        # Only `as_completed` holds the futures: each result is freed once yielded.
        done = dask_as_completed(
            self.client.map(fn, [shared] * len(items), list(items), pure=False)
        )
        del shared
        for future in done:
            yield future.result()


@contextlib.contextmanager
def executor_for(scheduler: str | None, *, workers: int | None = None) -> Iterator[Executor]:
    """The executor a setting names: None or "" threads, `LOCAL_CLUSTER` a local Dask
    cluster, anything else the address of a running Dask scheduler.

    Parameters
    ----------
    scheduler : str, optional
        As above.
    workers : int, optional
        Threads, or local Dask worker processes (default: CPU count).
    """
    if not scheduler:
        yield ThreadExecutor(workers)
        return
    address = None if scheduler == LOCAL_CLUSTER else scheduler
    with DaskExecutor(address, n_workers=workers) as executor:
        yield executor
