"""Coverage use cases: compute a new coverage version, read the current one.

Rasters live under the coverage folder (``COVERAGE_DIR``, default ``DATA_DIR/coverage``), never
in the database. Each computation writes a complete version into its own folder
``versions/<name>/`` (rasters and ``summary.json``) and then switches the ``current`` pointer
file to it in one atomic rename, so a reader sees either the old version or the new one, never
a half-written mix. A reader resolves the pointer once per request (`current`) and reads only
that version's files. Superseded versions stay on disk for ``COVERAGE_VERSION_GRACE_S`` (the
one just replaced always stays) so requests that resolved them before the switch still find
their files. Per-site path losses are cached on disk under ``DATA_DIR/loss-cache`` by the hash
of their inputs, so a recompute after an edit only computes the sites it touches, in any worker.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.features import geometry_mask
from sqlalchemy.orm import Session

from registry import backhaul, terrain
from registry.backhaul import SiteBackhaul
from registry.errors import NotFoundError, ValidationError
from registry.models import Site
from registry.radio.coverage import (
    NO_SERVER,
    SERVICE_CLASS_COLORMAP,
    CoverageParams,
    SectorSpec,
    compute_coverage,
    write_category_names,
    write_coverage_geotiffs,
)
from registry.radio.executors import executor_for
from registry.radio.linkbudget import SERVICE_CLASS_NODATA, SERVICE_CLASSES
from registry.readiness import TechGrid
from registry.services import queries

Config = Mapping[str, Any]
TECHNOLOGIES = ("4G", "5G")
LAYERS = ("best_server", "rsrp_dbm", "sinr_db", "ul_rate_mbps", "service_class")
#: Raster names: each layer per technology ("4g_rsrp_dbm", …) and the better of both phones'
#: service classes ("service_class").
RASTERS = (*(f"{t.lower()}_{layer}" for t in TECHNOLOGIES for layer in LAYERS), "service_class")
#: The pointer file naming the current version's folder, and the folder holding the versions.
POINTER, VERSIONS = "current", "versions"
NO_COVERAGE = (
    "no coverage has been computed yet: run `flask coverage compute` or POST /api/v1/coverage"
)

WGS84 = "EPSG:4326"


# ---------------------------------------------------------------- inputs
def dem_file(config: Config) -> Path:
    return Path(config["DATA_DIR"]) / "dem.tif"


def coverage_root(config: Config) -> Path:
    """The coverage folder (``COVERAGE_DIR``, e.g. a scenario's own folder)."""
    return Path(config.get("COVERAGE_DIR") or Path(config["DATA_DIR"]) / "coverage")


@functools.lru_cache(maxsize=2)
def _load_dem(path: str, _mtime: float) -> terrain.Dem:
    with rasterio.open(path) as src:  # a projected DEM keeps its CRS (the UTM zone of its area)
        projected = src.crs is not None and src.crs.is_projected
    return terrain.load_dem(path, crs=None if projected else terrain.WORKING_CRS, voids="fill")


def working_dem(config: Config) -> terrain.Dem:
    """The registry's DEM (``DATA_DIR/dem.tif``), loaded once per file version."""
    path = dem_file(config)
    if not path.exists():
        raise NotFoundError(f"no DEM at {path}: run `flask demo`, or put a GeoTIFF there")
    return _load_dem(str(path), path.stat().st_mtime)


def coverage_params(config: Config) -> CoverageParams:
    """Coverage parameters from the ``COVERAGE_*`` settings (the rest: CoverageParams defaults)."""
    return CoverageParams(
        model=config["COVERAGE_MODEL"],
        analysis_step=int(config["COVERAGE_ANALYSIS_STEP"]),
        max_radius_m=float(config["COVERAGE_MAX_RADIUS_M"]),
    )


def to_dem(dem: terrain.Dem) -> Transformer:
    """lon/lat → the DEM's CRS (metres)."""
    return Transformer.from_crs(WGS84, dem.crs, always_xy=True)


def project(geom: Any, transformer: Transformer) -> Any:
    """A shapely geometry through ``transformer`` (e.g. a commune polygon into the DEM CRS)."""
    return shapely.transform(
        geom, lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1]))
    )


def site_ground_m(dem: terrain.Dem, x_m: float, y_m: float, stored_m: float | None) -> float:
    """A site's ground elevation: the stored one, else the DEM cell holding the site (the cell
    the radio core's window is centred on). Coverage and readiness both use this value; NaN
    off the DEM."""
    if stored_m is not None:
        return float(stored_m)
    row, col = dem.cell_index(x_m, y_m)
    r, c = math.floor(float(row) + 0.5), math.floor(float(col) + 0.5)
    if not (0 <= r < dem.shape[0] and 0 <= c < dem.shape[1]):
        return math.nan
    return float(dem.elevation_m[r, c])


def fibre_network(session: Session) -> Any:
    nodes = [{"code": n.code, "kind": n.kind} for n in queries.fibre_nodes(session)]
    links = [
        {
            "code": k.code,
            "from_node_code": k.from_node_code,
            "to_node_code": k.to_node_code,
            "status": k.status,
            "capacity_mbps": k.capacity_mbps,
            "geometry": k.geom,
        }
        for k in queries.fibre_links(session)
    ]
    return backhaul.fibre_graph(nodes, links)


def site_backhaul(sites: list[Site], graph: Any) -> dict[str, SiteBackhaul]:
    """Each site's backhaul verdict over the fibre network ``graph``."""
    rows = (
        {
            "code": s.code,
            "status": s.status,
            "backhaul_kind": s.backhaul_kind,
            "backhaul_capacity_mbps": s.backhaul_capacity_mbps,
            "fibre_node_code": s.fibre_node_code,
        }
        for s in sites
    )
    return backhaul.site_backhaul(rows, graph)


def backhaul_state(session: Session) -> dict[str, SiteBackhaul]:
    """Each site's backhaul verdict from the stored fibre network."""
    return site_backhaul(queries.sites(session), fibre_network(session))


def sector_specs(
    session: Session, dem: terrain.Dem, reach: Mapping[str, SiteBackhaul]
) -> list[SectorSpec]:
    """Every sector as the radio core's input, in the DEM's CRS; a site that is down or cut
    off from the core network (``reach``) transmits nothing. Each antenna stands ``height_m``
    above the site's ground (`site_ground_m`)."""
    sites = {s.code: s for s in queries.sites(session)}
    transform = to_dem(dem)
    place: dict[str, tuple[float, float, float | None]] = {}
    specs = []
    for sector in queries.sectors(session):
        site = sites[sector.site_code]
        if site.code not in place:
            x, y = transform.transform(site.geom.x, site.geom.y)
            z = site_ground_m(dem, x, y, site.ground_elevation_m)
            place[site.code] = (x, y, z if math.isfinite(z) else None)  # None: off the DEM
        x, y, ground = place[site.code]
        specs.append(
            SectorSpec(
                site_code=site.code,
                sector_code=sector.code,
                x_m=x,
                y_m=y,
                ground_elevation_m=ground,
                height_m=sector.height_m,
                technology=sector.technology,
                freq_mhz=sector.freq_mhz,
                bandwidth_mhz=sector.bandwidth_mhz,
                azimuth_deg=sector.azimuth_deg,
                mech_tilt_deg=sector.mech_tilt_deg,
                elec_tilt_deg=sector.elec_tilt_deg,
                h_beamwidth_deg=sector.h_beamwidth_deg,
                v_beamwidth_deg=sector.v_beamwidth_deg,
                gain_dbi=sector.gain_dbi,
                tx_power_dbm=sector.tx_power_dbm,
                site_active=reach[site.code].reachable,
            )
        )
    return specs


def area_mask(
    session: Session, dem: terrain.Dem, shape: tuple[int, int], transform: Affine
) -> np.ndarray | None:
    """Cells of the analysis grid inside the registry's area (the union of its communes), or
    None when the registry has no communes (then the whole grid counts)."""
    communes = queries.communes(session)
    if not communes:
        return None
    lonlat_to_dem = to_dem(dem)
    shapes = [project(c.geom, lonlat_to_dem) for c in communes]
    inside: np.ndarray = geometry_mask(shapes, out_shape=shape, transform=transform, invert=True)
    return inside


# ---------------------------------------------------------------- computing a version
def run_coverage(
    config: Config,
    session: Session,
    *,
    progress: Callable[[int, int], None] | None = None,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Compute the coverage of each technology as a new version and make it the current one.

    The site and tile tasks run where ``scheduler`` says (default: the ``DASK_SCHEDULER``
    setting; see `registry.radio.executors.executor_for`). Site losses whose inputs did not
    change come from the disk cache. Returns the run's summary (also the version's
    ``summary.json``): class shares count only cells inside the registry's area.
    """
    started = time.perf_counter()
    dem = working_dem(config)
    params = coverage_params(config)
    specs = sector_specs(session, dem, backhaul_state(session))
    if not specs:
        raise ValidationError(
            "nothing to compute: the registry has no sectors",
            details=[{"field": "sectors", "reason": "import sites and sectors first"}],
        )
    root = coverage_root(config)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    folder = root / VERSIONS / name
    folder.mkdir(parents=True)
    try:
        summary = _write_version(config, session, folder, dem, params, specs, progress, scheduler)
        summary["wall_s"] = round(time.perf_counter() - started, 2)
        (folder / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    _switch(root, name, grace_s=float(config["COVERAGE_VERSION_GRACE_S"]))
    return summary


def _write_version(
    config: Config,
    session: Session,
    folder: Path,
    dem: terrain.Dem,
    params: CoverageParams,
    specs: list[SectorSpec],
    progress: Callable[[int, int], None] | None,
    scheduler: str | None,
) -> dict[str, Any]:
    cache = Path(config["DATA_DIR"]) / "loss-cache"
    summary: dict[str, Any] = {
        "version": folder.name,
        "model": params.model,
        "sectors": len(specs),
        "technologies": {},
    }
    classes = []
    with executor_for(scheduler or config.get("DASK_SCHEDULER")) as tasks:
        for tech in TECHNOLOGIES:
            chosen = [s for s in specs if s.technology == tech]
            if not chosen:
                continue
            result = compute_coverage(
                dem, chosen, params, cache_dir=cache, executor=tasks, progress=progress
            )
            write_coverage_geotiffs(result, folder, prefix=f"coverage_{tech.lower()}")
            classes.append(result.service_class)
            summary["technologies"][tech] = {
                "sectors": len(chosen),
                "site_groups_computed": result.n_computed,
                "site_groups_reused": result.n_cached,
            }
            shape, transform = result.service_class.shape, result.transform
    best = np.maximum.reduce(classes)
    _write_like(
        folder / f"coverage_{TECHNOLOGIES[0].lower()}_service_class.tif",
        folder / "coverage_service_class.tif",
        best,
    )
    inside = area_mask(session, dem, shape, transform)
    counted = best if inside is None else best[inside]
    valid = counted[counted != SERVICE_CLASS_NODATA]
    counts = np.bincount(valid, minlength=len(SERVICE_CLASSES))
    summary.update(
        cell_size_m=abs(transform.a),
        grid=list(shape),
        computed_at=datetime.now(UTC).isoformat(),
        shares_over="communes" if inside is not None else "grid",
        area_cells=int(valid.size),
        cell_share_by_class={
            name: round(float(n) / max(1, valid.size), 4)
            for name, n in zip(SERVICE_CLASSES, counts, strict=True)
        },
        params=json.loads(json.dumps(asdict(params))),
    )
    return summary


def _write_like(template: Path, path: Path, data: np.ndarray) -> None:
    """Write the service classes ``data`` as a COG with the georeference, tags, colour table
    and class names of the class raster ``template``."""
    with rasterio.open(template) as src:
        profile, tags, description = src.profile, src.tags(), src.descriptions[0]
    profile.update(driver="COG", compress="DEFLATE", blocksize=256, overview_resampling="nearest")
    profile.pop("blockxsize", None), profile.pop("blockysize", None), profile.pop("tiled", None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(**{**tags, "layer": "service_class (best of 4G and 5G phones)"})
        dst.set_band_description(1, description or "")
        dst.write_colormap(1, SERVICE_CLASS_COLORMAP)
    write_category_names(path, SERVICE_CLASSES)


def _current_name(root: Path) -> str | None:
    try:
        return (root / POINTER).read_text("utf-8").strip() or None
    except FileNotFoundError:
        return None


def _switch(root: Path, name: str, *, grace_s: float) -> None:
    """Point ``current`` at version ``name`` in one atomic rename, then remove the versions
    superseded more than ``grace_s`` ago (never the one just replaced)."""
    previous = _current_name(root)
    staged = root / f".{POINTER}.{uuid.uuid4().hex}"
    staged.write_text(name, encoding="utf-8")
    os.replace(staged, root / POINTER)
    versions = root / VERSIONS
    now = time.time()
    if previous and (versions / previous).is_dir():
        os.utime(versions / previous, (now, now))  # its mtime now says when it was superseded
    for folder in versions.iterdir():
        if folder.name in (name, previous) or not folder.is_dir():
            continue
        if now - folder.stat().st_mtime > grace_s:
            shutil.rmtree(folder, ignore_errors=True)
    # Files of the layout before versions (rasters written in place) are read by nobody now.
    for legacy in (*root.glob("coverage_*.tif"), root / "summary.json", root / "calibration.json"):
        legacy.unlink(missing_ok=True)


# ---------------------------------------------------------------- reading a version
@dataclass(frozen=True)
class CoverageVersion:
    """One computed coverage: its folder (never changed once current) and its summary."""

    folder: Path
    summary: dict[str, Any]

    @property
    def name(self) -> str:
        return self.folder.name

    def path(self, name: str) -> Path:
        return self.folder / f"coverage_{name}.tif"

    def rasters(self) -> list[str]:
        """The raster names this version has (no 5G ones without 5G sectors)."""
        return [n for n in RASTERS if self.path(n).exists()]

    def raster(self, name: str) -> Path:
        """A raster's file; NotFoundError naming the rasters when there is none."""
        if name not in RASTERS:
            raise NotFoundError(f"no coverage raster {name!r}; rasters: {', '.join(RASTERS)}")
        path = self.path(name)
        if not path.exists():
            raise NotFoundError(f"there is no {name} raster (no such sectors in the registry)")
        return path

    def grids(self) -> dict[str, TechGrid]:
        """Each technology's coverage grid (read once per version and process)."""
        return _grids(str(self.folder))

    def values_at(self, points_lonlat: list[tuple[float, float]]) -> list[dict[str, Any]]:
        """Every coverage value of each technology at each lon/lat point."""
        names = self.rasters()
        values: dict[str, list[Any]] = {}
        lookups: dict[str, list[str]] = {}
        for name in names:
            with rasterio.open(self.path(name)) as src:
                to_raster = Transformer.from_crs(WGS84, src.crs, always_xy=True)
                cells = [src.index(*to_raster.transform(lon, lat)) for lon, lat in points_lonlat]
                values[name] = [
                    src.read(1, window=((r, r + 1), (c, c + 1)))[0, 0].item()
                    if 0 <= r < src.height and 0 <= c < src.width
                    else None
                    for r, c in cells
                ]
                if name.endswith("best_server"):
                    lookups[name] = json.loads(src.tags()["sector_lookup"])
        return [
            _point_values(lon, lat, {n: v[i] for n, v in values.items()}, lookups)
            for i, (lon, lat) in enumerate(points_lonlat)
        ]

    def served_area(self, site_code: str) -> dict[str, dict[str, float]]:
        """Area (km²) where the site is the best server, by service class, per technology."""
        out: dict[str, dict[str, float]] = {}
        for tech in TECHNOLOGIES:
            server_tif = self.path(f"{tech.lower()}_best_server")
            class_tif = self.path(f"{tech.lower()}_service_class")
            if not server_tif.exists() or not class_tif.exists():
                continue
            with rasterio.open(server_tif) as src:
                server = src.read(1)
                lookup = json.loads(src.tags()["sector_lookup"])
                cell_km2 = abs(src.transform.a * src.transform.e) / 1e6
            with rasterio.open(class_tif) as src:
                classes = src.read(1)
            mine = [i for i, entry in enumerate(lookup) if entry.split("/", 1)[0] == site_code]
            if not mine:
                continue
            chosen = classes[np.isin(server, mine)]
            counts = np.bincount(
                chosen[chosen < len(SERVICE_CLASSES)], minlength=len(SERVICE_CLASSES)
            )
            out[tech] = {
                name: round(float(n) * cell_km2, 3)
                for name, n in zip(SERVICE_CLASSES, counts, strict=True)
            }
            out[tech]["total"] = round(float(counts.sum()) * cell_km2, 3)
        return out


def _point_values(
    lon: float, lat: float, values: Mapping[str, Any], lookups: Mapping[str, list[str]]
) -> dict[str, Any]:
    if values.get("service_class") is None:
        return {"lon": lon, "lat": lat, "inside": False}

    def finite(v: float | None) -> float | None:
        return None if v is None or not np.isfinite(v) else round(float(v), 2)

    def class_name(code: int) -> str:
        return SERVICE_CLASSES[code] if code != SERVICE_CLASS_NODATA else "nodata"

    point: dict[str, Any] = {
        "lon": lon,
        "lat": lat,
        "inside": True,
        "service_class": class_name(values["service_class"]),
    }
    for tech in TECHNOLOGIES:
        t = tech.lower()
        if f"{t}_best_server" not in values:
            continue
        server = values[f"{t}_best_server"]
        site, sector = (
            lookups[f"{t}_best_server"][server].split("/", 1)
            if server != NO_SERVER
            else (None, None)
        )
        point[tech] = {
            "site_code": site,
            "sector_code": sector,
            "rsrp_dbm": finite(values[f"{t}_rsrp_dbm"]),
            "sinr_db": finite(values[f"{t}_sinr_db"]),
            "ul_rate_mbps": finite(values[f"{t}_ul_rate_mbps"]),
            "service_class": class_name(values[f"{t}_service_class"]),
        }
    return point


@functools.lru_cache(maxsize=2)
def _grids(folder: str) -> dict[str, TechGrid]:
    """The grids of one version folder; versions never change, so caching by folder is safe
    (the arrays are read-only)."""
    grids = {}
    for tech in TECHNOLOGIES:
        prefix = Path(folder) / f"coverage_{tech.lower()}"
        if not Path(f"{prefix}_best_server.tif").exists():
            continue
        arrays = {}
        for layer in ("best_server", "rsrp_dbm", "ul_rate_mbps"):
            with rasterio.open(f"{prefix}_{layer}.tif") as src:
                arrays[layer] = src.read(1)
                arrays[layer].flags.writeable = False
                transform, tags = src.transform, src.tags()
        lookup = [entry.split("/", 1) for entry in json.loads(tags["sector_lookup"])]
        grids[tech] = TechGrid(
            tech,
            transform,
            arrays["best_server"],
            tuple(site for site, _ in lookup),
            tuple(sector for _, sector in lookup),
            arrays["rsrp_dbm"],
            arrays["ul_rate_mbps"],
        )
    if not grids:
        raise NotFoundError(NO_COVERAGE)
    return grids


def current(config: Config) -> CoverageVersion:
    """The current coverage version (resolve it once per request and read only it)."""
    root = coverage_root(config)
    name = _current_name(root)
    folder = root / VERSIONS / name if name else None
    if folder is None or not (folder / "summary.json").exists():
        raise NotFoundError(NO_COVERAGE)
    return CoverageVersion(folder, json.loads((folder / "summary.json").read_text("utf-8")))


def current_or_none(config: Config) -> CoverageVersion | None:
    """The current version, or None while none has been computed."""
    try:
        return current(config)
    except NotFoundError:
        return None


def coverage_at(config: Config, points_lonlat: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """Every coverage value of the current version at each lon/lat point."""
    return current(config).values_at(points_lonlat)
