"""The on-disk cache of site losses, with a bounded in-memory LRU in front of it.

Each site group's loss is stored as ``site-loss-{key}.npz`` in a directory, where the
key hashes every input of the loss (`registry.radio.coverage.losses.loss_key`), so an
unchanged site is never recomputed and files never go stale. Writes are atomic. A
`LossCache` belongs to one run: the LRU lives as long as the run, and each Dask worker
holds its own copy (the cache object is pickled without the LRU's content).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from registry.radio.coverage.types import SiteLoss

# Site losses kept in memory while mosaicking from the disk cache: more than one tile needs
# (a few hundred at rural density), so neighbouring tiles reuse them; about 0.8 MB each at the
# defaults (20 km radius, analysis step 3, one frequency).
LOSS_LRU_SIZE = 512


class LossCache:
    """Site losses on disk in `directory` (None: no disk cache), read through a bounded LRU.

    Parameters
    ----------
    directory : str or pathlib.Path, optional
        Cache directory (created on the first store); None keeps nothing on disk.
    lru_size : int
        Losses `get` keeps in memory, least recently used dropped first.
    """

    def __init__(self, directory: str | Path | None, lru_size: int = LOSS_LRU_SIZE) -> None:
        if lru_size < 1:
            raise ValueError("lru_size must be at least 1")
        self.directory = Path(directory) if directory is not None else None
        self.lru_size = lru_size
        self._lru: OrderedDict[str, SiteLoss] = OrderedDict()
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type[LossCache], tuple[Path | None, int]]:
        """Pickled (sent to a Dask worker) as a new, empty cache on the same directory."""
        return LossCache, (self.directory, self.lru_size)

    def path(self, key: str) -> Path:
        """File of a loss; ValueError without a directory."""
        if self.directory is None:
            raise ValueError("this loss cache has no directory")
        return self.directory / f"site-loss-{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.directory is not None and self.path(key).exists()

    def load(self, key: str) -> SiteLoss | None:
        """A loss read from disk (not through the LRU); None when absent."""
        if key not in self:
            return None
        with np.load(self.path(key)) as data:
            return SiteLoss(
                key,
                tuple(data["freqs_mhz"].tolist()),
                int(data["origin"][0]),
                int(data["origin"][1]),
                data["loss_db"],
                float(data["z_tx_m"]),
            )

    def store(self, loss: SiteLoss) -> None:
        """Write a loss to disk (nothing without a directory); readers never see half a file."""
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(
                fh,
                loss_db=loss.loss_db,
                freqs_mhz=np.asarray(loss.freqs_mhz),
                origin=np.array([loss.row0, loss.col0]),
                z_tx_m=np.float64(loss.z_tx_m),
            )
        os.replace(tmp, self.path(loss.key))

    def get(self, key: str) -> SiteLoss:
        """A loss through the LRU; KeyError when it is not on disk."""
        with self._lock:
            hit = self._lru.get(key)
            if hit is not None:
                self._lru.move_to_end(key)
                return hit
        loss = self.load(key)  # outside the lock: threads read different files at once
        if loss is None:
            raise KeyError(f"site loss {key} is not in the cache {self.directory}")
        with self._lock:
            self._lru[key] = loss
            self._lru.move_to_end(key)
            while len(self._lru) > self.lru_size:
                self._lru.popitem(last=False)
        return loss

    @property
    def n_in_memory(self) -> int:
        """Losses the LRU holds now."""
        with self._lock:
            return len(self._lru)
