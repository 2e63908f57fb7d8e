"""The shell around the pure core: registry records → terrain → radio → rasters on disk.

CLI commands and API views call these functions; the numeric work stays in
``registry.terrain`` and ``registry.radio``. Rasters live under ``DATA_DIR/coverage`` (never in
the database); per-site path losses are cached under ``DATA_DIR/loss-cache`` by the hash of their
inputs, and the last result is kept in memory so an edit re-mosaics only the tiles it touches.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from pyproj import Transformer
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import terrain
from registry.errors import NotFoundError, ValidationError
from registry.models import Measurement, Sector, Site
from registry.radio.calibration import fit_calibration
from registry.radio.coverage import (
    NO_SERVER,
    CoverageParams,
    CoverageResult,
    SectorSpec,
    compute_coverage,
    update_coverage,
    write_coverage_geotiffs,
)
from registry.radio.linkbudget import SERVICE_CLASS_NODATA, SERVICE_CLASSES

Config = Mapping[str, Any]
LAYERS = ("best_server", "rsrp_dbm", "sinr_db", "ul_rate_mbps", "service_class")

_previous: dict[str, CoverageResult] = {}
_previous_lock = threading.Lock()


def dem_file(config: Config) -> Path:
    return Path(config["DATA_DIR"]) / "dem.tif"


def coverage_dir(config: Config) -> Path:
    return Path(config["DATA_DIR"]) / "coverage"


@functools.lru_cache(maxsize=2)
def _load_dem(path: str, _mtime: float) -> terrain.Dem:
    return terrain.load_dem(path, voids="fill")


def working_dem(config: Config) -> terrain.Dem:
    """The registry's DEM (``DATA_DIR/dem.tif``), loaded once per file version."""
    path = dem_file(config)
    if not path.exists():
        raise NotFoundError(f"no DEM at {path}: run `flask demo`, or put a GeoTIFF there")
    return _load_dem(str(path), path.stat().st_mtime)


def coverage_params(config: Config) -> CoverageParams:
    """Coverage parameters from the ``COVERAGE_*`` settings (the rest: CoverageParams defaults)."""
    return CoverageParams(model=config["COVERAGE_MODEL"],
                          analysis_step=int(config["COVERAGE_ANALYSIS_STEP"]),
                          max_radius_m=float(config["COVERAGE_MAX_RADIUS_M"]))


def sector_specs(session: Session, dem: terrain.Dem) -> list[SectorSpec]:
    """Every sector of the registry as the radio core's input, in the DEM's CRS."""
    rows = session.execute(select(Sector, Site).join(Site, Sector.site_code == Site.code)
                           .order_by(Sector.code)).all()
    to_dem = Transformer.from_crs("EPSG:4326", dem.crs, always_xy=True)
    specs = []
    for sector, site in rows:
        x, y = to_dem.transform(site.geom.x, site.geom.y)
        specs.append(SectorSpec(
            site_code=site.code, sector_code=sector.code, x_m=x, y_m=y,
            ground_elevation_m=site.ground_elevation_m, height_m=sector.height_m,
            technology=sector.technology, freq_mhz=sector.freq_mhz,
            bandwidth_mhz=sector.bandwidth_mhz, azimuth_deg=sector.azimuth_deg,
            mech_tilt_deg=sector.mech_tilt_deg, elec_tilt_deg=sector.elec_tilt_deg,
            h_beamwidth_deg=sector.h_beamwidth_deg, v_beamwidth_deg=sector.v_beamwidth_deg,
            gain_dbi=sector.gain_dbi, tx_power_dbm=sector.tx_power_dbm,
            site_active=site.status == "active"))
    return specs


def run_coverage(config: Config, session: Session, *,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Compute (or incrementally update) the coverage mosaics and write them as GeoTIFFs.

    Returns the run's summary (also saved as ``coverage/summary.json``).
    """
    started = time.perf_counter()
    dem = working_dem(config)
    params = coverage_params(config)
    specs = sector_specs(session, dem)
    if not specs:
        raise ValidationError("nothing to compute: the registry has no sectors", details=[
            {"field": "sectors", "reason": "import sites and sectors first"}])
    out = coverage_dir(config)
    cache = Path(config["DATA_DIR"]) / "loss-cache"
    with _previous_lock:
        previous = _previous.get(str(out))
        if previous is not None and previous.dem is dem and previous.params == params:
            result = update_coverage(previous, specs, cache_dir=cache, progress=progress)
        else:
            result = compute_coverage(dem, specs, params, cache_dir=cache, progress=progress)
        _previous[str(out)] = result
    files = write_coverage_geotiffs(result, out)
    classes = result.service_class[result.service_class != SERVICE_CLASS_NODATA]
    counts = np.bincount(classes, minlength=len(SERVICE_CLASSES))
    summary = {
        "computed_at": datetime.now(UTC).isoformat(),
        "wall_s": round(time.perf_counter() - started, 2),
        "model": params.model, "cell_size_m": abs(result.transform.a),
        "grid": list(result.service_class.shape), "sectors": len(specs),
        "site_groups_computed": result.n_computed, "site_groups_reused": result.n_cached,
        "cell_share_by_class": {name: round(float(n) / max(1, classes.size), 4)
                                for name, n in zip(SERVICE_CLASSES, counts, strict=True)},
        "params": json.loads(json.dumps(asdict(params))),
        "files": {name: path.name for name, path in files.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def coverage_summary(config: Config) -> dict[str, Any]:
    path = coverage_dir(config) / "summary.json"
    if not path.exists():
        raise NotFoundError("no coverage has been computed yet: run `flask coverage compute` "
                            "or POST /api/v1/coverage")
    return json.loads(path.read_text("utf-8"))


def raster_file(config: Config, layer: str) -> Path:
    if layer not in LAYERS:
        raise NotFoundError(f"no coverage layer {layer!r}; layers: {', '.join(LAYERS)}")
    path = coverage_dir(config) / f"coverage_{layer}.tif"
    if not path.exists():
        coverage_summary(config)  # raises the explanatory 404
        raise NotFoundError(f"coverage layer {layer} is missing; recompute the coverage")
    return path


def coverage_at(config: Config, points_lonlat: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """Every coverage value at each lon/lat point, read from the written rasters."""
    values: dict[str, list[Any]] = {}
    lookup: list[str] = []
    for layer in LAYERS:
        with rasterio.open(raster_file(config, layer)) as src:
            to_raster = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True)
            xy = [to_raster.transform(lon, lat) for lon, lat in points_lonlat]
            inside = [src.index(x, y) for x, y in xy]
            h, w = src.height, src.width
            values[layer] = [src.read(1, window=((r, r + 1), (c, c + 1)))[0, 0].item()
                             if 0 <= r < h and 0 <= c < w else None for r, c in inside]
            if layer == "best_server":
                lookup = json.loads(src.tags()["sector_lookup"])
    out = []
    for i, (lon, lat) in enumerate(points_lonlat):
        if values["best_server"][i] is None:
            out.append({"lon": lon, "lat": lat, "inside": False})
            continue
        server = values["best_server"][i]
        site, sector = lookup[server].split("/", 1) if server != NO_SERVER else (None, None)
        code = values["service_class"][i]

        def finite(v: float) -> float | None:
            return None if v is None or not np.isfinite(v) else round(float(v), 2)

        out.append({"lon": lon, "lat": lat, "inside": True, "site_code": site,
                    "sector_code": sector, "rsrp_dbm": finite(values["rsrp_dbm"][i]),
                    "sinr_db": finite(values["sinr_db"][i]),
                    "ul_rate_mbps": finite(values["ul_rate_mbps"][i]),
                    "service_class": SERVICE_CLASSES[code] if code != SERVICE_CLASS_NODATA
                    else "nodata"})
    return out


def calibrate(config: Config, session: Session) -> dict[str, Any]:
    """Fit RSRP offsets (global, per site) from stored RSRP measurements vs the prediction."""
    measurements = [m for m in session.scalars(select(Measurement).order_by(Measurement.code))
                    if m.rsrp_dbm is not None]
    if not measurements:
        raise ValidationError("no RSRP measurements to calibrate with", details=[
            {"field": "measurements", "reason": "import measurements with rsrp_dbm first"}])
    predicted = coverage_at(config, [(m.geom.x, m.geom.y) for m in measurements])
    used = [(m, p) for m, p in zip(measurements, predicted, strict=True)
            if p.get("rsrp_dbm") is not None]
    if not used:
        raise ValidationError("no measurement lies where the prediction has a signal", details=[
            {"field": "measurements", "reason": "all fall outside the predicted coverage"}])
    fit = fit_calibration([p["rsrp_dbm"] for _, p in used], [m.rsrp_dbm for m, _ in used],
                          [m.site_code or p["site_code"] for m, p in used])
    report = json.loads(json.dumps(asdict(fit)))
    report["measurements_skipped"] = len(measurements) - len(used)
    (coverage_dir(config) / "calibration.json").write_text(json.dumps(report, indent=1), "utf-8")
    return report
