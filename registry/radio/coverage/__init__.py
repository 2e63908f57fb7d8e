"""Coverage of a set of sectors over a DEM.

Pipeline
--------
1. Sectors are grouped by antenna position and height ("site groups"). Each
   group's basic transmission loss is computed once for all its frequencies
   by a radial sweep over a square window of the DEM around the site (radius
   `CoverageParams.max_radius_m`; see `registry.radio._kernels` for the sweep
   and how it relates to the exact Deygout method; RMa takes its LOS/NLOS
   from the propagation of `line_of_sight`). Losses are cached on disk by
   the hash of their inputs (DEM fingerprint, antenna position and height,
   frequencies, loss parameters), so an unchanged site is never recomputed.
   (`point_path_loss` gives the same loss at a few cells only, walking each
   cell's own sweep ray: siting's demand points.)
2. Each sector's pattern (TR 36.814) and power per resource element turn the
   loss into RSRP; the mosaic keeps, per cell, the best server (strongest
   RSRP) and the received power summed per frequency, tile by tile.
3. Per cell: DL SINR = best / (load x co-channel others + noise per RE),
   uplink rate to the best server (TR 36.942 Annex A mapping at the
   configured location reliability) and the service class.

Analysis grid: `CoverageParams.analysis_step` = s (odd) evaluates every s-th
DEM cell in each direction (cell centres coincide with DEM cell centres;
grid transform = DEM transform scaled by s), while profiles are still
sampled at the DEM resolution. s = 1 is the DEM grid itself.

Sites are placed at the centre of the DEM cell containing them (at most half
a cell away) for the path loss; bearings and elevation angles for the
antenna pattern use the exact position. The ground elevation of a site is
the DEM value of that cell unless given.

Outputs are arrays on the analysis grid; `write_coverage_geotiffs` writes
them as cloud-optimised GeoTIFFs. `compute_coverage_to_geotiffs` streams them
to disk tile by tile instead, with the losses left in the disk cache and the
DEM possibly a `DemFile` read window by window, so memory stays bounded
whatever the area. Site and tile tasks run on the executor of the chosen
backend (`backends`: "cpu" threads or "dask"; a backend also names the per-site
loss function, the place a GPU kernel plugs in); each tile's cells depend only
on the site groups in their fixed order, so the results are the same whichever
runs them, in whatever order. The radio-side uplink rate here is not yet capped
by backhaul; that is the job of the analysis stage.

Modules
-------
types
    Sectors, parameters, site losses, results.
losses
    Per-site loss window, point losses, line of sight, loss keys, site groups.
cache
    The on-disk loss cache and its bounded in-memory LRU (`LossCache`).
backends
    Per-site loss function and executor by backend name.
mosaic
    Tiles, best server, SINR, uplink rate, service classes; `values_at`.
raster
    Cloud-optimised GeoTIFF output; the service-class colour table and names.
run
    `compute_coverage`, `update_coverage`, `compute_coverage_to_geotiffs`.
"""

from __future__ import annotations

from registry.radio.coverage.backends import BACKENDS, Backend
from registry.radio.coverage.cache import LOSS_LRU_SIZE, LossCache
from registry.radio.coverage.losses import (
    SiteLossFn,
    line_of_sight,
    loss_key,
    point_path_loss,
    site_path_loss,
)
from registry.radio.coverage.mosaic import TILE_SIZE, values_at
from registry.radio.coverage.raster import (
    SERVICE_CLASS_COLORMAP,
    SERVICE_CLASS_COLOURS,
    write_category_names,
    write_coverage_geotiffs,
)
from registry.radio.coverage.run import (
    compute_coverage,
    compute_coverage_to_geotiffs,
    update_coverage,
)
from registry.radio.coverage.types import (
    LAYERS,
    NO_SERVER,
    CoverageFiles,
    CoverageParams,
    CoverageResult,
    Model,
    PointValues,
    Progress,
    SectorPatterns,
    SectorSpec,
    SiteLoss,
    Tile,
)

__all__ = [
    "BACKENDS",
    "LAYERS",
    "LOSS_LRU_SIZE",
    "NO_SERVER",
    "SERVICE_CLASS_COLORMAP",
    "SERVICE_CLASS_COLOURS",
    "TILE_SIZE",
    "Backend",
    "CoverageFiles",
    "CoverageParams",
    "CoverageResult",
    "LossCache",
    "Model",
    "PointValues",
    "Progress",
    "SectorPatterns",
    "SectorSpec",
    "SiteLoss",
    "SiteLossFn",
    "Tile",
    "compute_coverage",
    "compute_coverage_to_geotiffs",
    "line_of_sight",
    "loss_key",
    "point_path_loss",
    "site_path_loss",
    "update_coverage",
    "values_at",
    "write_category_names",
    "write_coverage_geotiffs",
]
