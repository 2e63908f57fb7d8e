"""Coverage runs: site losses (known, cached or computed on a backend), then the mosaic,
in memory (`compute_coverage`, `update_coverage`) or streamed to files
(`compute_coverage_to_geotiffs`)."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine

from registry.radio.coverage.backends import open_backend
from registry.radio.coverage.cache import LOSS_LRU_SIZE, LossCache
from registry.radio.coverage.losses import SiteLossFn, group_bounds, group_sectors
from registry.radio.coverage.mosaic import MosaicInputs, analysis_grid, clip, mosaic_tile, tiles
from registry.radio.coverage.raster import LayerWriter, coverage_tags
from registry.radio.coverage.types import (
    NO_SERVER,
    CoverageFiles,
    CoverageParams,
    CoverageResult,
    Progress,
    SectorSpec,
    SiteGroup,
    SiteLoss,
    Tile,
)
from registry.radio.executors import Executor
from registry.terrain import DemSource

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _LossJob:
    """What every loss task shares (sent to each Dask worker once)."""

    dem: DemSource
    params: CoverageParams
    site_loss: SiteLossFn
    cache: LossCache
    keep: bool  # return the loss itself, or only its key (the loss stays in the disk cache)


def _loss_task(job: _LossJob, g: SiteGroup) -> SiteLoss | str:
    loss = job.site_loss(
        job.dem,
        g.x_m,
        g.y_m,
        antenna_height_m=g.height_m,
        freqs_mhz=g.freqs_mhz,
        ground_elevation_m=g.ground_elevation_m,
        params=job.params,
    )
    job.cache.store(loss)
    return loss if job.keep else loss.key


def _resolve_losses(
    job: _LossJob,
    groups: Sequence[SiteGroup],
    known: Mapping[str, SiteLoss],
    executor: Executor,
    tick: Callable[[], None],
) -> tuple[dict[str, SiteLoss], int]:
    """Loss of every group: from `known`, the disk cache, or computed (in parallel).

    With ``job.keep`` False (the cache then needs a directory) losses stay on disk: cached
    ones are only checked for, computed ones are not sent back, and the mapping returned is
    empty. That bounds memory whatever the number of sites.
    """
    losses: dict[str, SiteLoss] = {}

    def found(key: str) -> bool:
        if not job.keep:
            return key in job.cache
        hit = known.get(key) or job.cache.load(key)
        if hit is not None:
            losses[key] = hit
        return hit is not None

    todo: dict[str, SiteGroup] = {}
    for g in groups:
        if found(g.loss_key):
            tick()
        else:
            todo.setdefault(g.loss_key, g)
    for loss in executor.map_unordered(_loss_task, job, list(todo.values())):
        if isinstance(loss, SiteLoss):
            losses[loss.key] = loss
        tick()
    return losses, len(todo)


def _check_sectors(sectors: Sequence[SectorSpec]) -> tuple[SectorSpec, ...]:
    seen: set[tuple[str, str]] = set()
    for s in sectors:
        key = (s.site_code, s.sector_code)
        if key in seen:
            raise ValueError(f"duplicate sector {s.site_code}/{s.sector_code}")
        seen.add(key)
    return tuple(sectors)


def _progress_counter(progress: Progress | None, total: int) -> Callable[[], None]:
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    return tick


@dataclass(frozen=True)
class _FullRun:
    """Parameters, checked sectors, site groups, analysis grid (shape, transform), all its
    tiles and the progress counter of a run over the whole grid."""

    params: CoverageParams
    sectors: tuple[SectorSpec, ...]
    groups: list[SiteGroup]
    shape: tuple[int, int]
    transform: Affine
    tiles: list[Tile]
    tick: Callable[[], None]

    @classmethod
    def plan(
        cls,
        dem: DemSource,
        sectors: Sequence[SectorSpec],
        params: CoverageParams | None,
        progress: Progress | None,
    ) -> _FullRun:
        p = params or CoverageParams()
        checked = _check_sectors(sectors)
        groups = group_sectors(dem, checked, p)
        shape, transform = analysis_grid(dem, p.analysis_step)
        all_tiles = tiles(shape)
        tick = _progress_counter(progress, len(groups) + len(all_tiles))
        return cls(p, checked, groups, shape, transform, all_tiles, tick)


def compute_coverage(
    dem: DemSource,
    sectors: Sequence[SectorSpec],
    params: CoverageParams | None = None,
    *,
    backend: str = "auto",
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> CoverageResult:
    """Coverage mosaics of a set of sectors over a DEM, in memory.

    Parameters
    ----------
    dem : Dem or DemFile
        Terrain in a metric CRS; sector coordinates are in this CRS.
    sectors : sequence of SectorSpec
        All sectors; inactive sites (`site_active` False) are left out.
    params : CoverageParams, optional
        Model and constants.
    backend : str
        What computes the per-site losses and where the tasks run, a key of
        `registry.radio.coverage.backends.BACKENDS`: "cpu" (numba sweep, thread pool),
        "dask" (the same sweep on a local Dask cluster started for the run), "gpu" (the
        CUDA kernels) or "auto" (the default: "gpu" where a CUDA device is present, else
        "cpu"). A backend supplies the function called for each site group in place of
        `site_path_loss`, and its default executor; caching, mosaic and outputs are shared.
    cache_dir : str or pathlib.Path, optional
        Directory of the per-site loss cache; None disables it.
    workers : int, optional
        Threads or local Dask workers of the backend's executor (default: CPU count).
    executor : Executor, optional
        Runs the tasks instead of the backend's own executor, e.g. a `DaskExecutor`
        connected to a cluster and shared by several runs; the results are the same.
    progress : callable, optional
        Called as progress(done, total) after each site group and each tile.

    Returns
    -------
    CoverageResult

    See Also
    --------
    compute_coverage_to_geotiffs : the same mosaics streamed to disk, for any area.
    """
    run = _FullRun.plan(dem, sectors, params, progress)
    out: dict[str, np.ndarray] = {
        "best_server": np.full(run.shape, NO_SERVER, dtype=np.int32),
        "rsrp_dbm": np.full(run.shape, np.nan, dtype=np.float32),
        "sinr_db": np.full(run.shape, np.nan, dtype=np.float32),
        "ul_rate_mbps": np.zeros(run.shape, dtype=np.float32),
        "service_class": np.zeros(run.shape, dtype=np.uint8),
    }
    with open_backend(backend, workers, executor) as (site_loss, tasks):
        job = _LossJob(dem, run.params, site_loss, LossCache(cache_dir), keep=True)
        result = _losses_and_mosaic(
            job, run.sectors, run.groups, run.tiles, out, {}, tasks, run.tick
        )
    logger.info(
        "coverage: %d site groups (%d computed), %d tiles",
        len(run.groups),
        result.n_computed,
        len(run.tiles),
    )
    return result


def _losses_and_mosaic(
    job: _LossJob,
    sectors: tuple[SectorSpec, ...],
    groups: list[SiteGroup],
    tiles_todo: list[Tile],
    out: dict[str, np.ndarray],
    known: Mapping[str, SiteLoss],
    executor: Executor,
    tick: Callable[[], None],
) -> CoverageResult:
    """Resolve every site group's loss (known, cached or computed), mosaic ``tiles_todo``
    into ``out`` and wrap it all in a result."""
    dem, p = job.dem, job.params
    losses, n_computed = _resolve_losses(job, groups, known, executor, tick)
    _, transform = analysis_grid(dem, p.analysis_step)
    inputs = MosaicInputs.build(dem, p, sectors, groups, transform, losses, job.cache)
    for (r0, c0, r1, c1), layers in executor.map_unordered(mosaic_tile, inputs, tiles_todo):
        for name, data in layers.items():
            out[name][r0:r1, c0:c1] = data
        tick()
    return CoverageResult(
        dem,
        p,
        sectors,
        transform,
        dem.crs,
        best_server=out["best_server"],
        rsrp_dbm=out["rsrp_dbm"],
        sinr_db=out["sinr_db"],
        ul_rate_mbps=out["ul_rate_mbps"],
        service_class=out["service_class"],
        site_losses=losses,
        n_computed=n_computed,
        n_cached=len(groups) - n_computed,
    )


def update_coverage(
    previous: CoverageResult,
    sectors: Sequence[SectorSpec],
    *,
    backend: str = "auto",
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> CoverageResult:
    """Coverage after editing sectors: recompute only what the edit touches.

    Site groups whose loss inputs are unchanged reuse the previous loss (or
    the disk cache); only the cells within the windows of site groups that were
    added, removed or edited (any field of any of their sectors) are
    re-mosaicked, tile by tile. The result equals `compute_coverage` on the new
    sectors.

    Parameters
    ----------
    previous : CoverageResult
        Result on the same DEM and parameters.
    sectors : sequence of SectorSpec
        The complete new list of sectors.
    backend, cache_dir, workers, executor, progress
        As in `compute_coverage`.

    Returns
    -------
    CoverageResult
    """
    p, dem = previous.params, previous.dem
    checked = _check_sectors(sectors)
    groups = group_sectors(dem, checked, p)
    old_groups = group_sectors(dem, previous.sectors, p)
    old_signatures = {g.signature for g in old_groups}
    new_signatures = {g.signature for g in groups}
    changed = [g for g in groups if g.signature not in old_signatures]
    changed += [g for g in old_groups if g.signature not in new_signatures]
    touched = [group_bounds(dem, g, p) for g in changed]
    shape, _ = analysis_grid(dem, p.analysis_step)
    todo = [part for t in tiles(shape) if (part := clip(t, touched)) is not None]
    tick = _progress_counter(progress, len(groups) + len(todo))
    remap = np.full(len(previous.sectors) + 1, NO_SERVER, dtype=np.int32)
    index = {(s.site_code, s.sector_code): i for i, s in enumerate(checked)}
    for i, s in enumerate(previous.sectors):
        remap[i] = index.get((s.site_code, s.sector_code), NO_SERVER)
    out: dict[str, np.ndarray] = {
        "best_server": remap[previous.best_server],  # NO_SERVER (-1) maps to the last entry
        "rsrp_dbm": previous.rsrp_dbm.copy(),
        "sinr_db": previous.sinr_db.copy(),
        "ul_rate_mbps": previous.ul_rate_mbps.copy(),
        "service_class": previous.service_class.copy(),
    }
    with open_backend(backend, workers, executor) as (site_loss, tasks):
        job = _LossJob(dem, p, site_loss, LossCache(cache_dir), keep=True)
        result = _losses_and_mosaic(
            job, checked, groups, todo, out, previous.site_losses, tasks, tick
        )
    logger.info(
        "coverage update: %d site groups changed, %d computed, %d tiles re-mosaicked",
        len(changed),
        result.n_computed,
        len(todo),
    )
    return result


def compute_coverage_to_geotiffs(
    dem: DemSource,
    sectors: Sequence[SectorSpec],
    directory: str | Path,
    params: CoverageParams | None = None,
    *,
    prefix: str = "coverage",
    backend: str = "auto",
    cache_dir: str | Path | None = None,
    lru_size: int = LOSS_LRU_SIZE,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> CoverageFiles:
    """Coverage mosaics streamed tile by tile to GeoTIFFs: memory stays bounded for any area.

    Site losses are written to the disk cache and stay there. Each tile task
    reads its own DEM window and the losses that reach it (through the run's
    `LossCache`, which keeps the last `lru_size` in memory, per Dask worker) and
    returns its layers, which are written into tiled GeoTIFFs as they arrive; no
    process holds a whole mosaic. The files equal
    ``write_coverage_geotiffs(compute_coverage(...))`` cell for cell.

    Parameters
    ----------
    dem : Dem or DemFile
        Terrain in a metric CRS; a `DemFile` for grids too large to hold (tasks
        then read only their windows of the GeoTIFF).
    sectors : sequence of SectorSpec
        All sectors; inactive sites are left out.
    directory : str or pathlib.Path
        Output directory (created if missing); files ``{prefix}_{layer}.tif``.
    params : CoverageParams, optional
        Model and constants.
    prefix : str
        File name prefix.
    cache_dir : str or pathlib.Path, optional
        Loss cache directory (default: a temporary one, removed afterwards). With
        Dask workers on other machines it must be on a file system they share, as
        must the DEM file.
    lru_size : int
        Site losses each process keeps in memory while mosaicking.
    backend, workers, executor, progress
        As in `compute_coverage`.

    Returns
    -------
    CoverageFiles
    """
    run = _FullRun.plan(dem, sectors, params, progress)
    with contextlib.ExitStack() as stack:
        site_loss, tasks = stack.enter_context(open_backend(backend, workers, executor))
        directory_of_losses = (
            cache_dir
            if cache_dir is not None
            else stack.enter_context(tempfile.TemporaryDirectory(prefix="site-losses-"))
        )
        job = _LossJob(dem, run.params, site_loss, LossCache(directory_of_losses, lru_size), False)
        _, n_computed = _resolve_losses(job, run.groups, {}, tasks, run.tick)
        inputs = MosaicInputs.build(
            dem, run.params, run.sectors, run.groups, run.transform, None, job.cache
        )
        tags = coverage_tags(run.params, dem, run.sectors)
        with LayerWriter(directory, prefix, run.shape, run.transform, dem.crs, tags) as writer:
            for tile, layers in tasks.map_unordered(mosaic_tile, inputs, run.tiles):
                writer.write(tile, layers)
                run.tick()
    logger.info(
        "coverage to %s: %d site groups (%d computed), %d tiles",
        directory,
        len(run.groups),
        n_computed,
        len(run.tiles),
    )
    return CoverageFiles(
        writer.paths, run.shape, run.transform, n_computed, len(run.groups) - n_computed
    )
