"""`flask` commands: init-db, import, export, demo, render-map. Thin: parse, call, report."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from registry import db, io, maps, pipeline, store
from registry.errors import RegistryError
from registry.models import BY_LAYER

log = logging.getLogger(__name__)


def _sessions() -> Any:
    return current_app.extensions["registry"]["sessions"]


def _fail(exc: RegistryError) -> click.ClickException:
    lines = [exc.message]
    for d in exc.details[:50]:
        where = f"{d.get('layer', '')} row {d['row']}: " if "row" in d else ""
        lines.append(f"  {where}{d.get('field', '')}: {d.get('reason', '')}")
    if len(exc.details) > 50:
        lines.append(f"  … and {len(exc.details) - 50} more")
    return click.ClickException("\n".join(lines))


def import_into_registry(layers: dict[str, list[dict[str, Any]]], *, actor: str,
                         area: Any) -> store.ImportReport:
    """Store layers in one transaction, with a progress bar over the rows."""
    total = sum(len(rows) for rows in layers.values())
    with click.progressbar(length=total, label="Importing", file=sys.stderr
                           ) as bar, db.transaction(_sessions()) as session:
        return store.import_layers(session, layers, actor=actor, area_bbox=area,
                                   progress=bar.update)


@click.command("init-db")
@with_appcontext
@click.option("--drop", is_flag=True, help="Drop every table first (loses all records).")
def init_db(drop: bool) -> None:
    """Create the registry's tables (they are also created on first run)."""
    engine = current_app.extensions["registry"]["engine"]
    if drop:
        db.drop_schema(engine)
    db.init_schema(engine)
    click.echo(f"Registry ready at {engine.url.render_as_string(hide_password=True)}")


@click.command("import")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(list(io.FORMATS)),
              help="File format (default: from the file name).")
@click.option("--layer", type=click.Choice(list(BY_LAYER)), help="Layer of a one-layer file.")
@click.option("--allow-outside-area", is_flag=True, help="Accept records outside the area.")
def import_command(path: Path, fmt: str | None, layer: str | None,
                   allow_outside_area: bool) -> None:
    """Import a GeoJSON, CSV, GeoPackage or OpenCelliD file, all or nothing."""
    try:
        layers = io.read_layers(path.read_bytes(), fmt=fmt, filename=path.name, layer=layer)
        area = None if allow_outside_area else current_app.config["AREA_BBOX"]
        report = import_into_registry(layers, actor="cli", area=area)
    except RegistryError as exc:
        raise _fail(exc) from None
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False))


@click.command("export")
@with_appcontext
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["gpkg", "geojson", "csv"]), default="gpkg")
@click.option("--layer", type=click.Choice(list(BY_LAYER)),
              help="One layer (GeoJSON/CSV); without it, OUT is a folder with one file a layer.")
def export_command(out: Path, fmt: str, layer: str | None) -> None:
    """Export the registry: one GeoPackage with every layer, or GeoJSON/CSV files."""
    with _sessions()() as session:
        if fmt == "gpkg":
            io.export_gpkg(session, out)
            click.echo(f"Wrote {out}")
            return
        write = io.export_geojson if fmt == "geojson" else io.export_csv
        targets = {layer: out} if layer else {
            name: out / f"{name}.{fmt}" for name in BY_LAYER}
        for name, path in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(write(session, name))
            click.echo(f"Wrote {path}")


def render_registry_map(out: Path) -> Path:
    """Render the registry's layers as a standalone HTML map."""
    with _sessions()() as session:
        frames = {name: io.layer_frame(session, BY_LAYER[name])
                  for name in ("communes", "fibre_links", "sites", "villages", "sellers")}
    out.parent.mkdir(parents=True, exist_ok=True)
    classes = pipeline.coverage_dir(current_app.config) / "coverage_service_class.tif"
    m = maps.registry_map(frames, service_class_tif=classes if classes.exists() else None)
    out.write_text(maps.offline_html(m), encoding="utf-8")
    return out


@click.command("render-map")
@with_appcontext
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output HTML (default: MAPS_DIR/registry.html).")
def render_map(out: Path | None) -> None:
    """Render the registry map into maps/."""
    path = render_registry_map(out or Path(current_app.config["MAPS_DIR"]) / "registry.html")
    click.echo(f"Wrote {path}")


@click.command("demo")
@with_appcontext
@click.option("--resolution-m", default=30.0, show_default=True, help="DEM cell size.")
@click.option("--seed", default=20251104, show_default=True, help="Seed of the synthetic layers.")
def demo(resolution_m: float, seed: int) -> None:
    """Build the Lai Châu demo (real communes + labelled synthetic layers), load it, compute
    its coverage and map it."""
    from geodata.build import build_demo

    started = time.perf_counter()
    data_dir = Path(current_app.config["DATA_DIR"])
    click.echo(f"Building the demo layers and DEM into {data_dir} …")
    frames = build_demo(data_dir, seed=seed, dem_resolution_m=resolution_m,
                        progress=lambda msg: click.echo(f"  {msg}", err=True))
    layers = {name: io.frame_rows(frame) for name, frame in frames.items()}
    try:
        report = import_into_registry(layers, actor="demo", area=None)
    except RegistryError as exc:
        raise _fail(exc) from None
    counts = {name: len(rows) for name, rows in layers.items()}
    click.echo(f"Loaded: {json.dumps(counts, ensure_ascii=False)}")
    click.echo(f"Changes: {json.dumps(report.to_dict(), ensure_ascii=False)}")
    click.echo("Computing coverage …")
    summary = compute_coverage_with_progress()
    click.echo(f"Coverage: {summary['grid'][1]}×{summary['grid'][0]} cells of "
               f"{summary['cell_size_m']:.0f} m in {summary['wall_s']} s; share of cells by class: "
               f"{json.dumps(summary['cell_share_by_class'])}")
    path = render_registry_map(Path(current_app.config["MAPS_DIR"]) / "registry.html")
    click.echo(f"Map: {path}")
    click.echo(f"Demo ready in {time.perf_counter() - started:.1f} s")


coverage = AppGroup("coverage", help="Terrain-aware coverage: compute, query, calibrate.")


def compute_coverage_with_progress() -> dict[str, Any]:
    with click.progressbar(length=1, label="Coverage", file=sys.stderr) as bar, \
            _sessions()() as session:
        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        return pipeline.run_coverage(current_app.config, session, progress=progress)


@coverage.command("compute")
def coverage_compute() -> None:
    """Compute the coverage rasters (only what changed since the last run is recomputed)."""
    try:
        summary = compute_coverage_with_progress()
    except RegistryError as exc:
        raise _fail(exc) from None
    click.echo(json.dumps({k: v for k, v in summary.items() if k != "params"}, indent=1))


@coverage.command("point")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
def coverage_point(lon: float, lat: float) -> None:
    """Every coverage value at LON LAT."""
    try:
        click.echo(json.dumps(pipeline.coverage_at(current_app.config, [(lon, lat)])[0]))
    except RegistryError as exc:
        raise _fail(exc) from None


@coverage.command("calibrate")
def coverage_calibrate() -> None:
    """Fit RSRP offsets from the stored measurements; report errors before and after."""
    try:
        with _sessions()() as session:
            click.echo(json.dumps(pipeline.calibrate(current_app.config, session), indent=1))
    except RegistryError as exc:
        raise _fail(exc) from None


def init_app(app: Flask) -> None:
    for command in (init_db, import_command, export_command, render_map, demo, coverage):
        app.cli.add_command(command)
