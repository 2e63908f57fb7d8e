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
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import backhaul, readiness, siting, terrain
from registry.backhaul import SiteBackhaul
from registry.errors import NotFoundError, ValidationError
from registry.models import (
    Commune,
    FibreLink,
    FibreNode,
    Measurement,
    Sector,
    Seller,
    Site,
    Village,
)
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
from registry.radio.executors import executor_for
from registry.radio.linkbudget import SERVICE_CLASS_NODATA, SERVICE_CLASSES
from registry.readiness import Place, ReadinessParams, SiteInfo, TechGrid

Config = Mapping[str, Any]
TECHNOLOGIES = ("4G", "5G")
LAYERS = ("best_server", "rsrp_dbm", "sinr_db", "ul_rate_mbps", "service_class")
#: Raster names: each layer per technology ("4g_rsrp_dbm", …) and the better of both phones'
#: service classes ("service_class").
RASTERS = (*(f"{t.lower()}_{layer}" for t in TECHNOLOGIES for layer in LAYERS), "service_class")

_previous: dict[tuple[str, str], CoverageResult] = {}
_previous_lock = threading.Lock()


def dem_file(config: Config) -> Path:
    return Path(config["DATA_DIR"]) / "dem.tif"


def coverage_dir(config: Config) -> Path:
    """Where the coverage rasters go (``COVERAGE_DIR``, e.g. a scenario's own folder)."""
    return Path(config.get("COVERAGE_DIR") or Path(config["DATA_DIR"]) / "coverage")


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
    return CoverageParams(
        model=config["COVERAGE_MODEL"],
        analysis_step=int(config["COVERAGE_ANALYSIS_STEP"]),
        max_radius_m=float(config["COVERAGE_MAX_RADIUS_M"]),
    )


def backhaul_state(session: Session) -> dict[str, SiteBackhaul]:
    """Each site's backhaul verdict from the stored fibre network."""
    graph = fibre_network(session)
    return backhaul.site_backhaul((_site_row(s) for s in session.scalars(select(Site))), graph)


def fibre_network(session: Session) -> Any:
    nodes = [{"code": n.code, "kind": n.kind} for n in session.scalars(select(FibreNode))]
    links = [
        {
            "code": k.code,
            "from_node_code": k.from_node_code,
            "to_node_code": k.to_node_code,
            "status": k.status,
            "capacity_mbps": k.capacity_mbps,
            "geometry": k.geom,
        }
        for k in session.scalars(select(FibreLink))
    ]
    return backhaul.fibre_graph(nodes, links)


def _site_row(site: Site) -> dict[str, Any]:
    return {
        "code": site.code,
        "status": site.status,
        "backhaul_kind": site.backhaul_kind,
        "backhaul_capacity_mbps": site.backhaul_capacity_mbps,
        "fibre_node_code": site.fibre_node_code,
    }


def sector_specs(
    session: Session, dem: terrain.Dem, reach: Mapping[str, SiteBackhaul]
) -> list[SectorSpec]:
    """Every sector as the radio core's input, in the DEM's CRS; a site that is down or cut
    off from the core network (``reach``) transmits nothing."""
    rows = session.execute(
        select(Sector, Site).join(Site, Sector.site_code == Site.code).order_by(Sector.code)
    ).all()
    to_dem = Transformer.from_crs("EPSG:4326", dem.crs, always_xy=True)
    specs = []
    for sector, site in rows:
        x, y = to_dem.transform(site.geom.x, site.geom.y)
        specs.append(
            SectorSpec(
                site_code=site.code,
                sector_code=sector.code,
                x_m=x,
                y_m=y,
                ground_elevation_m=site.ground_elevation_m,
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


def run_coverage(
    config: Config,
    session: Session,
    *,
    progress: Callable[[int, int], None] | None = None,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Compute (or incrementally update) the coverage of each technology and write the rasters.

    The site and tile tasks run where ``scheduler`` says (default: the ``DASK_SCHEDULER``
    setting; see `registry.radio.executors.executor_for`). Returns the run's summary (also
    saved as ``coverage/summary.json``).
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
    out = coverage_dir(config)
    cache = Path(config["DATA_DIR"]) / "loss-cache"
    summary: dict[str, Any] = {"model": params.model, "sectors": len(specs), "technologies": {}}
    classes = []
    for path in out.glob("coverage_*.tif"):
        path.unlink()
    with executor_for(scheduler or config.get("DASK_SCHEDULER")) as tasks:
        for tech in TECHNOLOGIES:
            chosen = [s for s in specs if s.technology == tech]
            if not chosen:
                continue
            key = (str(out), tech)
            with _previous_lock:
                previous = _previous.get(key)
                if previous is not None and previous.dem is dem and previous.params == params:
                    result = update_coverage(
                        previous, chosen, cache_dir=cache, executor=tasks, progress=progress
                    )
                else:
                    result = compute_coverage(
                        dem, chosen, params, cache_dir=cache, executor=tasks, progress=progress
                    )
                _previous[key] = result
            write_coverage_geotiffs(result, out, prefix=f"coverage_{tech.lower()}")
            classes.append(result.service_class)
            summary["technologies"][tech] = {
                "sectors": len(chosen),
                "site_groups_computed": result.n_computed,
                "site_groups_reused": result.n_cached,
            }
            summary.update(
                cell_size_m=abs(result.transform.a), grid=list(result.service_class.shape)
            )
    best = np.maximum.reduce(classes)
    _write_like(
        out / f"coverage_{TECHNOLOGIES[0].lower()}_service_class.tif",
        out / "coverage_service_class.tif",
        best,
    )
    valid = best[best != SERVICE_CLASS_NODATA]
    counts = np.bincount(valid, minlength=len(SERVICE_CLASSES))
    summary.update(
        computed_at=datetime.now(UTC).isoformat(),
        wall_s=round(time.perf_counter() - started, 2),
        cell_share_by_class={
            name: round(float(n) / max(1, valid.size), 4)
            for name, n in zip(SERVICE_CLASSES, counts, strict=True)
        },
        params=json.loads(json.dumps(asdict(params))),
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def _write_like(template: Path, path: Path, data: np.ndarray) -> None:
    """Write ``data`` as a COG with the georeference and tags of ``template``."""
    with rasterio.open(template) as src:
        profile, tags = src.profile, src.tags()
    profile.update(driver="COG", compress="DEFLATE", blocksize=256, overview_resampling="nearest")
    profile.pop("blockxsize", None), profile.pop("blockysize", None), profile.pop("tiled", None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(**{**tags, "layer": "service_class (best of 4G and 5G phones)"})


def coverage_summary(config: Config) -> dict[str, Any]:
    path = coverage_dir(config) / "summary.json"
    if not path.exists():
        raise NotFoundError(
            "no coverage has been computed yet: run `flask coverage compute` "
            "or POST /api/v1/coverage"
        )
    return json.loads(path.read_text("utf-8"))


def raster_file(config: Config, name: str) -> Path:
    if name not in RASTERS:
        raise NotFoundError(f"no coverage raster {name!r}; rasters: {', '.join(RASTERS)}")
    path = coverage_dir(config) / f"coverage_{name}.tif"
    if not path.exists():
        coverage_summary(config)  # raises the explanatory 404
        raise NotFoundError(f"there is no {name} raster (no such sectors in the registry)")
    return path


def coverage_grids(config: Config) -> dict[str, TechGrid]:
    """Each technology's coverage grid, read back from its rasters."""
    grids = {}
    for tech in TECHNOLOGIES:
        prefix = coverage_dir(config) / f"coverage_{tech.lower()}"
        if not Path(f"{prefix}_best_server.tif").exists():
            continue
        arrays = {}
        for layer in ("best_server", "rsrp_dbm", "ul_rate_mbps"):
            with rasterio.open(f"{prefix}_{layer}.tif") as src:
                arrays[layer] = src.read(1)
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
        raise NotFoundError(
            "no coverage has been computed yet: run `flask coverage compute` "
            "or POST /api/v1/coverage"
        )
    return grids


def coverage_at(config: Config, points_lonlat: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """Every coverage value of each technology at each lon/lat point."""
    values: dict[str, list[Any]] = {}
    names = [n for n in RASTERS if (coverage_dir(config) / f"coverage_{n}.tif").exists()]
    if "service_class" not in names:
        coverage_summary(config)
    lookups: dict[str, list[str]] = {}
    for name in names:
        with rasterio.open(raster_file(config, name)) as src:
            to_raster = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True)
            cells = [src.index(*to_raster.transform(lon, lat)) for lon, lat in points_lonlat]
            values[name] = [
                src.read(1, window=((r, r + 1), (c, c + 1)))[0, 0].item()
                if 0 <= r < src.height and 0 <= c < src.width
                else None
                for r, c in cells
            ]
            if name.endswith("best_server"):
                lookups[name] = json.loads(src.tags()["sector_lookup"])

    def finite(v: float | None) -> float | None:
        return None if v is None or not np.isfinite(v) else round(float(v), 2)

    def class_name(code: int) -> str:
        return SERVICE_CLASSES[code] if code != SERVICE_CLASS_NODATA else "nodata"

    out = []
    for i, (lon, lat) in enumerate(points_lonlat):
        if values["service_class"][i] is None:
            out.append({"lon": lon, "lat": lat, "inside": False})
            continue
        point: dict[str, Any] = {
            "lon": lon,
            "lat": lat,
            "inside": True,
            "service_class": class_name(values["service_class"][i]),
        }
        for tech in TECHNOLOGIES:
            t = tech.lower()
            if f"{t}_best_server" not in values:
                continue
            server = values[f"{t}_best_server"][i]
            site, sector = (
                lookups[f"{t}_best_server"][server].split("/", 1)
                if server != NO_SERVER
                else (None, None)
            )
            point[tech] = {
                "site_code": site,
                "sector_code": sector,
                "rsrp_dbm": finite(values[f"{t}_rsrp_dbm"][i]),
                "sinr_db": finite(values[f"{t}_sinr_db"][i]),
                "ul_rate_mbps": finite(values[f"{t}_ul_rate_mbps"][i]),
                "service_class": class_name(values[f"{t}_service_class"][i]),
            }
        out.append(point)
    return out


def calibrate(config: Config, session: Session) -> dict[str, Any]:
    """Fit RSRP offsets (global, per site) from stored RSRP measurements vs the prediction."""
    measurements = [
        m
        for m in session.scalars(select(Measurement).order_by(Measurement.code))
        if m.rsrp_dbm is not None
    ]
    if not measurements:
        raise ValidationError(
            "no RSRP measurements to calibrate with",
            details=[
                {"field": "measurements", "reason": "import measurements with rsrp_dbm first"}
            ],
        )
    at = coverage_at(config, [(m.geom.x, m.geom.y) for m in measurements])
    predicted = [p.get(m.technology or "4G", {}) for m, p in zip(measurements, at, strict=True)]
    used = [
        (m, p)
        for m, p in zip(measurements, predicted, strict=True)
        if p.get("rsrp_dbm") is not None
    ]
    if not used:
        raise ValidationError(
            "no measurement lies where the prediction has a signal",
            details=[
                {"field": "measurements", "reason": "all fall outside the predicted coverage"}
            ],
        )
    fit = fit_calibration(
        [p["rsrp_dbm"] for _, p in used],
        [m.rsrp_dbm for m, _ in used],
        [m.site_code or p["site_code"] for m, p in used],
    )
    report = json.loads(json.dumps(asdict(fit)))
    report["measurements_skipped"] = len(measurements) - len(used)
    (coverage_dir(config) / "calibration.json").write_text(json.dumps(report, indent=1), "utf-8")
    return report


# ---------------------------------------------------------------- readiness
def readiness_params(config: Config, **overrides: Any) -> ReadinessParams:
    """Readiness assumptions from the ``READINESS_*`` settings, then ``overrides``."""
    settings = {
        name: config[f"READINESS_{name.upper()}"]
        for name in (
            "concurrent_streams_per_cell",
            "backhaul_share_for_streams",
            "walking_radius_m",
        )
    }
    return ReadinessParams(**{**settings, **{k: v for k, v in overrides.items() if v is not None}})


class ReadinessInputs:
    """Everything the readiness analysis reads, loaded once per request or command."""

    def __init__(self, config: Config, session: Session, params: ReadinessParams) -> None:
        self.params = params
        self.dem = working_dem(config)
        self.grids = coverage_grids(config)
        self.graph = fibre_network(session)
        sites = list(session.scalars(select(Site).order_by(Site.code)))
        self.site_nodes = {
            s.code: s.fibre_node_code
            for s in sites
            if s.backhaul_kind == "fibre" and s.fibre_node_code
        }
        self.backhaul = backhaul.site_backhaul((_site_row(s) for s in sites), self.graph)
        self.to_dem = Transformer.from_crs("EPSG:4326", self.dem.crs, always_xy=True)
        self.to_lonlat = Transformer.from_crs(self.dem.crs, "EPSG:4326", always_xy=True)
        techs: dict[str, set[str]] = {}
        heights: dict[str, float] = {}
        for sector in session.scalars(select(Sector)):
            techs.setdefault(sector.site_code, set()).add(sector.technology)
            heights[sector.site_code] = max(heights.get(sector.site_code, 0.0), sector.height_m)
        self.sites = []
        for s in sites:
            x, y = self.to_dem.transform(s.geom.x, s.geom.y)
            ground = (
                s.ground_elevation_m
                if s.ground_elevation_m is not None
                else float(terrain.elevation_at(self.dem, x, y))
            )
            self.sites.append(
                SiteInfo(
                    s.code,
                    x,
                    y,
                    ground + heights.get(s.code, s.tower_height_m),
                    s.status,
                    frozenset(techs.get(s.code, ())),
                )
            )
        self.sellers = list(session.scalars(select(Seller).order_by(Seller.code)))
        self.villages = list(session.scalars(select(Village).order_by(Village.code)))
        self.communes = list(session.scalars(select(Commune).order_by(Commune.code)))
        village_commune = {v.code: v.commune_code for v in self.villages}
        self.seller_commune = {
            s.code: village_commune.get(s.village_code or "", "") for s in self.sellers
        }

    def place(self, code: str, lon: float, lat: float, **kw: str) -> Place:
        x, y = self.to_dem.transform(lon, lat)
        return Place(code, x, y, **kw)

    def seller_places(self) -> list[Place]:
        return [
            self.place(
                s.code, s.geom.x, s.geom.y, phone_tech=s.phone_tech, wanted_class=s.wanted_class
            )
            for s in self.sellers
        ]

    def lonlat(self, x_m: float, y_m: float) -> tuple[float, float]:
        lon, lat = self.to_lonlat.transform(x_m, y_m)
        return round(lon, 6), round(lat, 6)


def seller_readiness(inputs: ReadinessInputs) -> list[dict[str, Any]]:
    """Every seller's verdict as a flat record (lon/lat, better spot in lon/lat)."""
    verdicts = readiness.seller_verdicts(
        inputs.seller_places(),
        inputs.grids,
        inputs.dem,
        inputs.sites,
        inputs.backhaul,
        inputs.params,
    )
    rows = []
    for seller, verdict in zip(inputs.sellers, verdicts, strict=True):
        row = {
            "name": seller.name,
            "commune_code": inputs.seller_commune[seller.code],
            "lon": seller.geom.x,
            "lat": seller.geom.y,
            **verdict.to_dict(),
        }
        spot = row.pop("better_spot")
        if spot:
            spot_lon, spot_lat = inputs.lonlat(spot["x_m"], spot["y_m"])
            row.update(
                better_spot_lon=spot_lon,
                better_spot_lat=spot_lat,
                better_spot_distance_m=spot["distance_m"],
                better_spot_bearing_deg=spot["bearing_deg"],
                better_spot_climb_m=spot["climb_m"],
            )
        rows.append(row)
    return rows


def kpi_table(inputs: ReadinessInputs) -> list[dict[str, Any]]:
    """KPI rows: the province first, then each commune."""
    p = inputs.params

    def classes(code: str, lon: float, lat: float) -> dict[str, str]:
        return readiness.place_classes(
            inputs.place(code, lon, lat), inputs.grids, inputs.backhaul, p
        )

    items = [
        readiness.Counted(
            "village", v.commune_code, v.population, classes(v.code, v.geom.x, v.geom.y)
        )
        for v in inputs.villages
    ]
    items += [
        readiness.Counted(
            "seller", inputs.seller_commune[s.code], 1, classes(s.code, s.geom.x, s.geom.y)
        )
        for s in inputs.sellers
    ]
    items += [
        readiness.Counted(
            "centre", c.code, 1, classes(c.code, c.admin_center_lon, c.admin_center_lat)
        )
        for c in inputs.communes
        if c.admin_center_lon is not None
    ]
    return readiness.coverage_kpis(items, {c.code: c.name for c in inputs.communes})


def fibre_cuts(
    inputs: ReadinessInputs, verdicts: list[dict[str, Any]], *, link_code: str | None = None
) -> list[dict[str, Any]]:
    """Impact of cutting one link, or of every single point of failure, most sellers first.

    A cut takes offline the sellers and villages served by the sites it isolates (assuming
    they fall back to no other site, so this is the worst case).
    """
    if link_code is None:
        isolated = backhaul.single_points_of_failure(inputs.graph)
    else:
        if not any(link_code in codes for *_, codes in inputs.graph.edges(data="codes")):
            raise NotFoundError(f"no working fibre link {link_code!r}")
        isolated = {link_code: backhaul.isolated_by_cut(inputs.graph, link_code)}
    served = {v["code"]: v["site_code"] for v in verdicts if v["service_class"] != "none"}
    village_servers = {}
    for v in inputs.villages:
        link = readiness.radio_link(
            inputs.place(v.code, v.geom.x, v.geom.y), inputs.grids, inputs.params
        )
        village_servers[v.code] = (link.site_code, v.population)
    rows = []
    for code, nodes in isolated.items():
        sites = [s for s, node in inputs.site_nodes.items() if node in nodes]
        impact = readiness.cut_impact(sites, served, village_servers)
        rows.append({"link_code": code, "isolated_nodes": len(nodes), **impact})
    rows.sort(key=lambda r: (-len(r["sellers"]), -r["population"], r["link_code"]))
    return rows


def readiness_report(inputs: ReadinessInputs, *, top: int = 5) -> dict[str, Any]:
    """Seller verdicts, the KPI table with the province's stated figures checked, and the top
    single points of failure of the fibre network."""
    verdicts = seller_readiness(inputs)
    kpis = kpi_table(inputs)
    cuts = fibre_cuts(inputs, verdicts)
    return {
        "verdicts": verdicts,
        "kpis": kpis,
        "verdict_counts": dict(Counter(v["service_class"] for v in verdicts)),
        "limiting_factors": dict(Counter(v["limiting_factor"] for v in verdicts)),
        "stated_figures": readiness.stated_figures_check(kpis[0]),
        "single_points_of_failure": cuts[:top],
    }


def event_places(
    inputs: ReadinessInputs, *, streams: int, quality: str, travel_radius_m: float, candidates: str
) -> list[dict[str, Any]]:
    """Ranked event places among villages or commune centres."""
    if streams < 1:
        raise ValidationError(
            "bad streams", details=[{"field": "streams", "reason": "must be at least 1"}]
        )
    if candidates == "villages":
        places = [inputs.place(v.code, v.geom.x, v.geom.y) for v in inputs.villages]
        names = {v.code: v.name for v in inputs.villages}
    elif candidates == "communes":
        places = [
            inputs.place(c.code, c.admin_center_lon, c.admin_center_lat)
            for c in inputs.communes
            if c.admin_center_lon is not None
        ]
        names = {c.code: c.name for c in inputs.communes}
    else:
        raise ValidationError(
            "bad candidates",
            details=[{"field": "candidates", "reason": "must be villages or communes"}],
        )
    options = readiness.rank_event_places(
        places,
        streams=streams,
        quality=quality,
        grids=inputs.grids,
        backhaul=inputs.backhaul,
        sellers=inputs.seller_places(),
        travel_radius_m=travel_radius_m,
        params=inputs.params,
    )
    by_code = {p.code: p for p in places}
    return [
        {
            "name": names[o.code],
            **dict(
                zip(
                    ("lon", "lat"),
                    inputs.lonlat(by_code[o.code].x_m, by_code[o.code].y_m),
                    strict=True,
                )
            ),
            **o.to_dict(),
        }
        for o in options
    ]


# ---------------------------------------------------------------- siting
def siting_inputs(config: Config, session: Session) -> dict[str, Any]:
    """The siting problem of the registry: DEM, area, demand points with their current class,
    fibre nodes, fibre-fed sites and commune centres, all in the DEM's CRS."""
    inputs = ReadinessInputs(config, session, readiness_params(config))
    to_dem = inputs.to_dem

    def project(geom: Any) -> Any:
        return shapely.transform(
            geom, lambda c: np.column_stack(to_dem.transform(c[:, 0], c[:, 1]))
        )

    def current(code: str, lon: float, lat: float) -> str:
        return readiness.place_classes(
            inputs.place(code, lon, lat), inputs.grids, inputs.backhaul, inputs.params
        )["any"]

    demand = [
        siting.DemandPoint(
            v.code,
            *to_dem.transform(v.geom.x, v.geom.y),
            population=float(v.population or 0),
            current_class=current(v.code, v.geom.x, v.geom.y),
        )
        for v in inputs.villages
    ]
    demand += [
        siting.DemandPoint(
            s.code,
            *to_dem.transform(s.geom.x, s.geom.y),
            sellers=1.0,
            current_class=current(s.code, s.geom.x, s.geom.y),
        )
        for s in inputs.sellers
    ]
    return {
        "inputs": inputs,
        "dem": inputs.dem,
        "area": shapely.union_all([project(c.geom) for c in inputs.communes]),
        "demand": demand,
        "fibre_nodes": [
            siting.Hub(n.code, *to_dem.transform(n.geom.x, n.geom.y))
            for n in session.scalars(select(FibreNode))
        ],
        "fibre_fed": [
            siting.Hub(s.code, s.x_m, s.y_m)
            for s in inputs.sites
            if inputs.backhaul[s.code].kind == "fibre" and inputs.backhaul[s.code].reachable
        ],
        "centres": [
            (c.code, *to_dem.transform(c.admin_center_lon, c.admin_center_lat))
            for c in inputs.communes
            if c.admin_center_lon is not None
        ],
        "params": coverage_params(config),
    }


def run_siting(
    config: Config,
    session: Session,
    *,
    candidates: int,
    max_sites: int,
    budget_mvnd: float | None,
    spacing_km: float,
    candidate_spacing_km: float,
    method: str,
) -> dict[str, Any]:
    """Choose up to ``max_sites`` new sites within the budget; each chosen site with its cost,
    backhaul and what it lifts to the target class. Saved as ``siting/latest.json``."""
    if method not in ("greedy", "ip"):
        raise ValidationError(
            "bad method", details=[{"field": "method", "reason": "must be greedy or ip"}]
        )
    started = time.perf_counter()
    problem = siting_inputs(config, session)
    dem, inputs = problem["dem"], problem["inputs"]
    cands = siting.generate_candidates(
        dem,
        problem["area"],
        min_spacing_m=candidate_spacing_km * 1000,
        n_max=candidates,
        extra_points=problem["centres"],
    )
    costs = siting.site_costs(
        dem, cands, fibre_nodes=problem["fibre_nodes"], fibre_fed_sites=problem["fibre_fed"]
    )
    matrix = siting.candidate_gains(
        dem,
        cands,
        problem["demand"],
        params=problem["params"],
        backhaul_capacity_mbps=[c.capacity_mbps for c in costs],
    )
    select_sites = siting.ip_select if method == "ip" else siting.greedy_select
    chosen = select_sites(
        matrix,
        costs=np.array([c.total_cost for c in costs]),
        budget=budget_mvnd,
        max_sites=max_sites,
        min_spacing_m=spacing_km * 1000,
    )
    sites = []
    for i, gain in zip(chosen.chosen, chosen.marginal_gains, strict=True):
        candidate, cost, lifted = cands[i], costs[i], matrix.covers[i]
        lon, lat = inputs.lonlat(candidate.x_m, candidate.y_m)
        sites.append(
            {
                "code": candidate.code,
                "lon": lon,
                "lat": lat,
                "source": candidate.source,
                "ground_elevation_m": round(candidate.ground_elevation_m, 1),
                "total_cost_mvnd": round(cost.total_cost, 1),
                "backhaul": cost.kind,
                "backhaul_to": cost.to,
                "backhaul_distance_m": round(cost.distance_m),
                "marginal_gain": round(gain, 1),
                "population_lifted": int(matrix.population[lifted].sum()),
                "sellers_lifted": int(matrix.sellers[lifted].sum()),
                "lifted": [matrix.demand[j].code for j in lifted],
            }
        )
    result = {
        "method": chosen.method,
        "status": chosen.status,
        "mip_gap": chosen.mip_gap,
        "objective": chosen.objective,
        "cost_mvnd": round(chosen.cost, 1),
        "candidates": len(cands),
        "budget_mvnd": budget_mvnd,
        "max_sites": max_sites,
        "target_class": siting.GainParams().target_class,
        "sites": sites,
        "wall_s": round(time.perf_counter() - started, 2),
        "computed_at": datetime.now(UTC).isoformat(),
    }
    folder = Path(config["DATA_DIR"]) / "siting"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    return result


def latest_siting(config: Config) -> dict[str, Any]:
    path = Path(config["DATA_DIR"]) / "siting" / "latest.json"
    if not path.exists():
        raise NotFoundError("no siting run yet: run `flask siting run` or POST /api/v1/siting")
    return json.loads(path.read_text("utf-8"))
