"""Imports from open data: OpenStreetMap extracts, population grids, nationwide OpenCelliD
extracts. Each reads its file, then stores every record in one transaction, all or nothing
(`registry.store.import_layers`), and reports what it read, stored and skipped."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
from sqlalchemy.orm import Session, sessionmaker

from registry import db, store
from registry.errors import ValidationError
from registry.io import opencellid, osm, population
from registry.services import queries

Config = Mapping[str, Any]
BBox = tuple[float, float, float, float]
Progress = Callable[[int, int], None]
#: Suffixes of OpenStreetMap files (GDAL's OSM driver reads both).
OSM_SUFFIXES = (".osm", ".pbf")


def roads_file(config: Config) -> Path:
    """Where the roads of the last OSM import are kept for siting's fibre routes."""
    return Path(config["DATA_DIR"]) / "roads.gpkg"


def is_osm(filename: str | None, fmt: str | None) -> bool:
    return fmt == "osm" or (fmt is None and Path(filename or "").suffix.lower() in OSM_SUFFIXES)


def communes_frame(session: Session) -> gpd.GeoDataFrame:
    """The communes (``code``, ``population``, polygons) in lon/lat."""
    communes = queries.communes(session)
    frame = gpd.GeoDataFrame(
        {"code": [c.code for c in communes], "population": [c.population for c in communes]},
        geometry=[c.geom for c in communes],
        crs="EPSG:4326",
    )
    if frame.empty:
        raise ValidationError(
            "the registry has no communes to assign records to",
            details=[{"field": "communes", "reason": "import the communes' boundaries first"}],
        )
    return frame


def _store(
    sessions: sessionmaker[Session],
    layers: Mapping[str, list[dict[str, Any]]],
    *,
    actor: str,
    area_bbox: store.AreaArg,
    progress: Progress | None,
) -> store.ImportReport:
    total = sum(len(rows) for rows in layers.values())
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    with db.transaction(sessions) as session:
        return store.import_layers(session, layers, actor=actor, area_bbox=area_bbox, progress=step)


def _write_roads(roads: gpd.GeoDataFrame, path: Path) -> None:
    """The roads as a GeoPackage, replaced in one atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.stem}.{uuid.uuid4().hex}{path.suffix}")
    try:
        pyogrio.write_dataframe(roads, staged, layer="roads", driver="GPKG")
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def import_osm(
    config: Config,
    sessions: sessionmaker[Session],
    path: Path,
    *,
    actor: str,
    area_bbox: BBox | None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Villages, fibre, towers from an OSM extract into the registry; its roads to
    `roads_file` (written only once the records are stored)."""
    with sessions() as session:
        communes = communes_frame(session)
    read = osm.read_osm(path, communes)
    report = _store(sessions, read.layers, actor=actor, area_bbox=area_bbox, progress=progress)
    _write_roads(read.roads, roads_file(config))
    return {**report.to_dict(), "read": read.counts, "skipped": read.skipped}


def import_osm_bytes(
    config: Config,
    sessions: sessionmaker[Session],
    data: bytes,
    *,
    filename: str | None,
    actor: str,
    area_bbox: BBox | None,
) -> dict[str, Any]:
    """`import_osm` of uploaded bytes (PBF, or XML when the content is text)."""
    xml = data.lstrip()[:5] in (b"<?xml", b"<osm ")
    suffix = ".osm" if xml else ".osm.pbf"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{Path(filename or 'upload').name.split('.')[0]}{suffix}"
        path.write_bytes(data)
        return import_osm(config, sessions, path, actor=actor, area_bbox=area_bbox)


def import_opencellid_extract(
    sessions: sessionmaker[Session],
    data: bytes,
    *,
    actor: str,
    area_bbox: BBox,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """An OpenCelliD extract larger than the area (e.g. a whole country's): the cells outside
    the area (the union of the provinces, as for every record; ``area_bbox`` while there is no
    province), of another MCC, or on malformed rows are skipped and reported by reason."""
    with sessions() as session:
        area = store.registry_area(session, area_bbox)
    assert area is not None  # a box was given
    read = opencellid.parse_opencellid(data, scope=opencellid.CellScope(area=area))
    report = _store(sessions, read.layers, actor=actor, area_bbox=area, progress=progress)
    return {
        **report.to_dict(),
        "skipped": read.skipped,
        "skipped_lines": read.skipped_lines,
    }


def import_population(
    sessions: sessionmaker[Session],
    raster: Path,
    *,
    actor: str,
    scale_to_commune_totals: bool = False,
) -> dict[str, Any]:
    """Every village's population from a population grid (see `registry.io.population`)."""
    with sessions() as session:
        communes = communes_frame(session)
        villages = queries.villages(session)
        if not villages:
            raise ValidationError(
                "the registry has no villages",
                details=[{"field": "villages", "reason": "import villages first (e.g. from OSM)"}],
            )
        frame = gpd.GeoDataFrame(
            {
                "code": [v.code for v in villages],
                "commune_code": [v.commune_code for v in villages],
            },
            geometry=[v.geom for v in villages],
            crs="EPSG:4326",
        )
    result = population.village_populations(
        frame, communes, raster, scale_to_commune_totals=scale_to_commune_totals
    )
    rows = [{"code": code, "population": n} for code, n in result.populations.items()]
    report = _store(sessions, {"villages": rows}, actor=actor, area_bbox=None, progress=None)
    return {**report.to_dict(), "communes": result.communes, "outside_grid": result.outside_grid}
