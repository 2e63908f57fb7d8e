"""Import elevation tiles as the registry DEM (``DATA_DIR/dem.tif``) and invalidate what was
computed on the previous one.

The area to cover is the union of the registry's communes (the tiles' extent when there are
none). The new DEM replaces the old one in one atomic rename. Coverage computed on the old
terrain is no longer current: the ``current`` pointer is removed (its version folder is cleaned
by the next computation after the grace period) and the per-site loss cache, whose keys hash the
old DEM's fingerprint and so would never be read again, is emptied.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy.orm import Session

from registry.io import dem as dem_io
from registry.services import coverage, queries

Config = Mapping[str, Any]


def communes_area(session: Session) -> Any:
    """The union of the communes' polygons (lon/lat), or None when there are none."""
    polygons = [c.geom for c in queries.communes(session)]
    return shapely.union_all(polygons) if polygons else None


def invalidate_coverage(config: Config) -> list[str]:
    """Forget coverage computed on a previous DEM; returns what was dropped."""
    dropped = []
    pointer = coverage.coverage_root(config) / coverage.POINTER
    if pointer.exists():
        pointer.unlink()
        dropped.append("current coverage version")
    cache = Path(config["DATA_DIR"]) / "loss-cache"
    if cache.is_dir():
        aside = cache.with_name(f".loss-cache.{uuid.uuid4().hex}")
        os.replace(cache, aside)  # new runs start an empty cache at once
        shutil.rmtree(aside, ignore_errors=True)
        dropped.append("per-site loss cache")
    return dropped


def import_dem(
    config: Config,
    session: Session,
    paths: Sequence[Path],
    *,
    resolution_m: float = 30.0,
    margin_m: float = dem_io.DEFAULT_MARGIN_M,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the DEM from the tiles over the communes, write it, invalidate coverage."""
    area = communes_area(session)
    dem, report = dem_io.build_dem(
        paths, area=area, resolution_m=resolution_m, margin_m=margin_m, progress=progress
    )
    path = dem_io.write_cog(
        dem,
        coverage.dem_file(config),
        tags={
            "source_tiles": ",".join(report.tiles),
            "void_cells_filled": str(report.void_cells_filled),
            "resolution_m": str(resolution_m),
        },
    )
    if progress is not None:
        progress(dem_io.STAGES[-1])
    return {
        **report.to_dict(),
        "path": str(path),
        "area": "communes" if area is not None else "tiles",
        "invalidated": invalidate_coverage(config),
    }
