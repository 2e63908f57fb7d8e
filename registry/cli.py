"""`flask` commands: db, jobs, import, export, demo, render-map, coverage, readiness, siting,
scenario, users, region. Thin: parse, call one service, report; a `RegistryError` from any command
becomes its message (with the details) and exit status 1 (`RegistryCommand`)."""

from __future__ import annotations

import gzip
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import geopandas as gpd
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from registry import accounts, db, io, jobs, maps, store
from registry.errors import RegistryError
from registry.io.dem import DEFAULT_MARGIN_M, STAGES
from registry.models import BY_LAYER, ROLES, User
from registry.radio.executors import LOCAL_CLUSTER
from registry.radio.linkbudget import LIVE_CLASSES
from registry.services import coverage as coverage_service
from registry.services import dem as dem_service
from registry.services import imports, queries, readiness, regions, scenarios, siting
from registry.services import measurements as measurement_service
from registry.web import mapviews, reasons, sheets

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


class RegistryCommand(click.Command):
    """A command whose registry errors end it with their message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RegistryError as exc:
            raise _fail(exc) from None


class RegistryGroup(AppGroup):
    """A command group (run in the app context) whose commands are `RegistryCommand`s."""

    command_class = RegistryCommand


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr fed with (done, total) calls."""
    with click.progressbar(length=1, label=label, file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        yield progress


def import_into_registry(
    layers: dict[str, list[dict[str, Any]]], *, actor: str, area: Any
) -> store.ImportReport:
    """Store layers in one transaction, with a progress bar over the rows."""
    total = sum(len(rows) for rows in layers.values())
    with (
        click.progressbar(length=total, label="Importing", file=sys.stderr) as bar,
        db.transaction(_sessions()) as session,
    ):
        return store.import_layers(
            session, layers, actor=actor, area_bbox=area, progress=bar.update
        )


db_group = RegistryGroup("db", help="The database schema (Alembic migrations).")


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Create or upgrade the schema (keeps every record; the only command that runs DDL)."""
    engine = current_app.extensions["registry"]["engine"]
    db.upgrade(engine, revision)
    where = engine.url.render_as_string(hide_password=True)
    click.echo(f"Registry schema at revision {db.current_revision(engine)} in {where}")


@db_group.command("current")
def db_current() -> None:
    """The schema's revision and the newest one this release knows."""
    engine = current_app.extensions["registry"]["engine"]
    click.echo(f"current {db.current_revision(engine) or 'none'}, head {db.head_revision()}")


@db_group.command("reset")
@click.confirmation_option(prompt="Drop every table and every record?")
def db_reset() -> None:
    """Drop every table, then create the schema anew (loses all records)."""
    engine = current_app.extensions["registry"]["engine"]
    db.drop_schema(engine)
    db.upgrade(engine)
    click.echo(f"Registry schema created anew at revision {db.current_revision(engine)}")


jobs_group = RegistryGroup("jobs", help="Background jobs: run them, list them, cancel them.")


@jobs_group.command("worker")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Jobs run at once, each in its own process.",
)
@click.option("--once", is_flag=True, help="Stop when no job is queued.")
def jobs_worker(processes: int, once: bool) -> None:
    """Run queued jobs (for production, with JOBS_RUNNER=worker on the web processes)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    started = jobs.work(app, processes=processes, once=once)
    click.echo(f"Ran {started} job(s)")


@jobs_group.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def jobs_list(limit: int) -> None:
    """The latest jobs: id, kind, status, owner, created."""
    for job in jobs.recent(_sessions(), current_app.config, limit=limit):
        click.echo(
            f"{job['id']}\t{job['kind']}\t{job['status']}\t{job['owner']}\t{job['created_at']}"
        )


@jobs_group.command("cancel")
@click.argument("job_id")
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued or running job."""
    jobs.cancel(_sessions(), current_app.config, job_id)
    click.echo(f"Cancelled {job_id}")


@click.command("import", cls=RegistryCommand)
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*io.FORMATS, "osm"]),
    help="File format (default: from the file name; .osm and .osm.pbf are OpenStreetMap).",
)
@click.option("--layer", type=click.Choice(list(BY_LAYER)), help="Layer of a one-layer file.")
@click.option("--allow-outside-area", is_flag=True, help="Accept records outside the area.")
@click.option(
    "--skip-outside",
    is_flag=True,
    help="OpenCelliD extract larger than the area (e.g. nationwide, .csv or .csv.gz): skip the "
    "cells outside the area, of another MCC or on bad rows, and report them.",
)
def import_command(
    path: Path, fmt: str | None, layer: str | None, allow_outside_area: bool, skip_outside: bool
) -> None:
    """Import a GeoJSON, CSV, GeoPackage, OpenCelliD or OpenStreetMap file, all or nothing."""
    area = None if allow_outside_area else current_app.config["AREA_BBOX"]
    if imports.is_osm(path.name, fmt):
        with progress_bar("Importing") as progress:
            result = imports.import_osm(
                current_app.config,
                _sessions(),
                path,
                actor="cli",
                area_bbox=area,
                progress=progress,
            )
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    data = path.read_bytes()
    if skip_outside:
        if fmt not in (None, "opencellid") or area is None:
            raise click.BadParameter(
                "applies to OpenCelliD extracts, within the area", param_hint="--skip-outside"
            )
        if path.suffix.lower() == ".gz":
            data = gzip.decompress(data)
        with progress_bar("Importing") as progress:
            result = imports.import_opencellid_extract(
                _sessions(), data, actor="cli", area_bbox=area, progress=progress
            )
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    layers = io.read_layers(data, fmt=fmt, filename=path.name, layer=layer)
    report = import_into_registry(layers, actor="cli", area=area)
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False))


dem_group = RegistryGroup("dem", help="The registry's elevation model (DATA_DIR/dem.tif).")


@dem_group.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--resolution-m",
    type=click.FloatRange(1, 1000),
    default=30.0,
    show_default=True,
    help="Cell size of the DEM.",
)
@click.option(
    "--margin-km",
    type=click.FloatRange(0, 100),
    default=DEFAULT_MARGIN_M / 1000,
    show_default=True,
    help="Terrain kept around the communes.",
)
def dem_import(files: tuple[Path, ...], resolution_m: float, margin_km: float) -> None:
    """Build the DEM from SRTM/NASADEM .hgt (zipped or not), Copernicus GLO-30 or ALOS AW3D30
    tiles, or any GeoTIFF, over the communes; coverage must then be computed again."""
    with (
        click.progressbar(length=len(STAGES), label="DEM", file=sys.stderr) as bar,
        _sessions()() as session,
    ):
        result = dem_service.import_dem(
            current_app.config,
            session,
            list(files),
            resolution_m=resolution_m,
            margin_m=margin_km * 1000,
            progress=lambda _stage: bar.update(1),
        )
    rows, cols = result["shape"]
    click.echo(
        f"Wrote {result['path']}: {cols}×{rows} cells of {resolution_m:g} m in {result['crs']} "
        f"from {len(result['tiles'])} tile(s); filled {result['void_cells_filled']:,} void "
        f"cells ({result['void_share']:.3%})"
    )
    if result["invalidated"]:
        click.echo(f"Dropped {' and '.join(result['invalidated'])}: run `flask coverage compute`")


population_group = RegistryGroup("population", help="Village populations from population grids.")


@population_group.command("import")
@click.argument("raster", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--scale-to-commune-totals",
    is_flag=True,
    help="Scale each commune's villages to add up to the commune's stored population.",
)
def population_import(raster: Path, scale_to_commune_totals: bool) -> None:
    """Set every village's population from a WorldPop or GHSL grid (people per cell): the
    people in its Voronoi part of its commune."""
    result = imports.import_population(
        _sessions(), raster, actor="cli", scale_to_commune_totals=scale_to_commune_totals
    )
    click.echo(f"{'commune':<10}{'villages':>9}{'grid':>12}{'stored':>10}{'scale':>8}{'set':>10}")
    for row in result["communes"]:
        scale = "—" if row["scale"] is None else f"{row['scale']:.3f}"
        stored = "—" if row["stored_population"] is None else f"{row['stored_population']:,}"
        click.echo(
            f"{row['commune']:<10}{row['villages']:>9}{row['grid_population']:>12,.0f}"
            f"{stored:>10}{scale:>8}{row['villages_population']:>10,}"
        )
    if result["outside_grid"]:
        click.echo(
            f"Kept the stored population of {sum(result['outside_grid'].values())} village(s) "
            f"the grid does not cover (by commune: {result['outside_grid']})"
        )
    click.echo(json.dumps({k: result[k] for k in ("created", "updated", "unchanged")}))


@click.command("export", cls=RegistryCommand)
@with_appcontext
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["gpkg", "geojson", "csv"]), default="gpkg")
@click.option(
    "--layer",
    type=click.Choice(list(BY_LAYER)),
    help="One layer (GeoJSON/CSV); without it, OUT is a folder with one file a layer.",
)
def export_command(out: Path, fmt: str, layer: str | None) -> None:
    """Export the registry: one GeoPackage with every layer, or GeoJSON/CSV files."""
    with _sessions()() as session:
        if fmt == "gpkg":
            io.export_gpkg(session, out)
            click.echo(f"Wrote {out}")
            return
        write = io.export_geojson if fmt == "geojson" else io.export_csv
        targets = {layer: out} if layer else {name: out / f"{name}.{fmt}" for name in BY_LAYER}
        for name, path in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(write(session, name))
            click.echo(f"Wrote {path}")


def render_registry_map(out: Path, *, extra: dict[str, Any] | None = None) -> Path:
    """Render the registry's layers (and ``extra`` ones, e.g. chosen sites) as a standalone
    HTML map."""
    with _sessions()() as session:
        frames = {
            name: io.layer_frame(session, BY_LAYER[name])
            for name in ("communes", "fibre_links", "sites", "villages", "sellers")
        }
    frames.update(extra or {})
    out.parent.mkdir(parents=True, exist_ok=True)
    version = coverage_service.current_or_none(current_app.config)
    classes = version.path("service_class") if version is not None else None
    m = maps.registry_map(
        frames, service_class_tif=classes, relief=mapviews.relief(current_app.config)
    )
    out.write_text(maps.offline_html(m), encoding="utf-8")
    return out


@click.command("render-map", cls=RegistryCommand)
@with_appcontext
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output HTML (default: MAPS_DIR/registry.html).",
)
def render_map(out: Path | None) -> None:
    """Render the registry map into maps/."""
    path = render_registry_map(out or Path(current_app.config["MAPS_DIR"]) / "registry.html")
    click.echo(f"Wrote {path}")


@click.command("fieldpack", cls=RegistryCommand)
@with_appcontext
@click.argument("args", nargs=-1, metavar="COMMUNE|--all OUT_DIR")
@click.option("--all", "every", is_flag=True, help="A pack for every commune.")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
def fieldpack(args: tuple[str, ...], every: bool, lang: str) -> None:
    """Write the offline field pack of COMMUNE (or of every commune with --all) into OUT_DIR:
    one self-contained HTML file per commune that opens with no network."""
    if len(args) != (1 if every else 2):
        raise click.UsageError("give a COMMUNE code and OUT_DIR, or --all and OUT_DIR")
    out_dir = Path(args[-1])
    with _sessions()() as session:
        codes = [c.code for c in queries.communes(session)] if every else [args[0]]
    out_dir.mkdir(parents=True, exist_ok=True)
    for code in codes:
        with current_app.test_request_context():
            page = sheets.fieldpack_html(current_app.config, str(code), lang)
        path = out_dir / f"field-pack-{code}-{lang}.html"
        path.write_text(page, encoding="utf-8")
        click.echo(f"Wrote {path} ({len(page.encode()) / 1e6:.1f} MB)")


@click.command("demo", cls=RegistryCommand)
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
    frames = build_demo(
        data_dir,
        seed=seed,
        dem_resolution_m=resolution_m,
        progress=lambda msg: click.echo(f"  {msg}", err=True),
    )
    layers = {name: io.frame_rows(frame) for name, frame in frames.items()}
    report = import_into_registry(layers, actor="demo", area=None)
    counts = {name: len(rows) for name, rows in layers.items()}
    click.echo(f"Loaded: {json.dumps(counts, ensure_ascii=False)}")
    click.echo(f"Changes: {json.dumps(report.to_dict(), ensure_ascii=False)}")
    click.echo("Computing coverage …")
    summary = compute_coverage_with_progress()
    click.echo(
        f"Coverage: {summary['grid'][1]}×{summary['grid'][0]} cells of "
        f"{summary['cell_size_m']:.0f} m in {summary['wall_s']} s; share of cells by class: "
        f"{json.dumps(summary['cell_share_by_class'])}"
    )
    path = render_registry_map(Path(current_app.config["MAPS_DIR"]) / "registry.html")
    click.echo(f"Map: {path}")
    click.echo(f"Demo ready in {time.perf_counter() - started:.1f} s")


coverage = RegistryGroup("coverage", help="Terrain-aware coverage: compute, query, calibrate.")


def compute_coverage_with_progress(scheduler: str | None = None) -> dict[str, Any]:
    with progress_bar("Coverage") as progress, _sessions()() as session:
        return coverage_service.run_coverage(
            current_app.config, session, progress=progress, scheduler=scheduler
        )


@coverage.command("compute")
@click.option(
    "--dask",
    "scheduler",
    is_flag=False,
    flag_value=LOCAL_CLUSTER,
    default=None,
    metavar="[ADDRESS]",
    help="Run the site and tile tasks on Dask: a cluster started here, or the "
    "scheduler at ADDRESS (default: the DASK_SCHEDULER setting, else threads).",
)
def coverage_compute(scheduler: str | None) -> None:
    """Compute the coverage rasters (only what changed since the last run is recomputed)."""
    summary = compute_coverage_with_progress(scheduler)
    click.echo(json.dumps({k: v for k, v in summary.items() if k != "params"}, indent=1))


@coverage.command("point")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
def coverage_point(lon: float, lat: float) -> None:
    """Every coverage value at LON LAT."""
    click.echo(json.dumps(coverage_service.coverage_at(current_app.config, [(lon, lat)])[0]))


@coverage.command("calibrate")
@click.option("--folds", default=measurement_service.CV_FOLDS, show_default=True, type=int)
def coverage_calibrate(folds: int) -> None:
    """Calibrate RSRP (global, per site) and uplink (per technology) on the stored
    measurements; applied only where the k-fold held-out error drops."""
    with db.transaction(_sessions()) as session:
        result = measurement_service.calibrate(current_app.config, session, actor="cli", k=folds)
    click.echo(json.dumps(result, indent=1))


@coverage.command("calibrations")
def coverage_calibrations() -> None:
    """Every calibration, newest first (the newest applied one is in force)."""
    with _sessions()() as session:
        click.echo(json.dumps(measurement_service.calibrations(session), indent=1))


@coverage.command("revert-calibration")
def coverage_revert_calibration() -> None:
    """Take the calibration in force out of force; the previous one is in force again."""
    with db.transaction(_sessions()) as session:
        click.echo(json.dumps(measurement_service.revert(session, actor="cli"), indent=1))


readiness_group = RegistryGroup("readiness", help="Livestream readiness, events and fibre cuts.")
concurrent_option = click.option(
    "--concurrent-streams",
    type=click.IntRange(1, 1000),
    default=None,
    help="Sellers streaming at once in one cell (default: the READINESS_ setting).",
)


def _inputs(session: Any, concurrent_streams: int | None) -> readiness.ReadinessInputs:
    return readiness.load_inputs(current_app.config, session, concurrent_streams=concurrent_streams)


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:6.1%}"


@readiness_group.command("report")
@concurrent_option
@click.option("--top", default=5, show_default=True, help="Single points of failure to list.")
@click.option("--province", default=None, help="KPIs of this province only (default: all).")
def readiness_report(concurrent_streams: int | None, top: int, province: str | None) -> None:
    """KPI table, seller verdict counts and the top single points of failure, with wall time."""
    started = time.perf_counter()
    with _sessions()() as session:
        report = readiness.report(_inputs(session, concurrent_streams), top=top, province=province)
    live = ("hd_live", "fullhd_live")
    click.echo("Coverage KPIs (share of population; villages and sellers with signal)")
    click.echo(
        f"{'commune':<22}{'pop ≥720p':>10}{'4G signal':>10}{'5G signal':>10}"
        f"{'any signal':>11}{'villages':>9}{'sellers ≥720p':>14}"
    )
    for row in report["kpis"]:
        click.echo(
            f"{row['commune'][:21]:<22}"
            f"{_share(sum(row[f'population_any_{c}'] for c in live)):>10}"
            f"{_share(row['population_4G_signal']):>10}"
            f"{_share(row.get('population_5G_signal')):>10}"
            f"{_share(row['population_any_signal']):>11}{_share(row['villages_any_signal']):>9}"
            f"{_share(sum(row[f'sellers_any_{c}'] for c in live)):>14}"
        )
    click.echo(f"\nSeller verdicts by class: {json.dumps(report['verdict_counts'])}")
    click.echo(f"Limiting factors: {json.dumps(report['limiting_factors'])}")
    figures = report["stated_figures"]
    click.echo(
        f"Stated figures: commune centres with signal "
        f"{_share(figures['commune_centres_with_signal'])} "
        f"(claim 100%: {'holds' if figures['centres_claim_holds'] else 'does not hold'}); "
        f"villages {_share(figures['villages_with_signal'])} (claim > 98%: "
        f"{'holds' if figures['villages_claim_holds'] else 'does not hold'})"
    )
    click.echo(f"\nTop {top} single points of failure (fibre links):")
    for cut in report["single_points_of_failure"]:
        click.echo(
            f"  {cut['link_code']}: {len(cut['sites'])} sites, "
            f"{len(cut['sellers'])} sellers, {len(cut['villages'])} villages, "
            f"{cut['population']:,} people"
        )
    click.echo(f"\nWall time: {time.perf_counter() - started:.1f} s")


@readiness_group.command("sellers")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@concurrent_option
def readiness_sellers(out: Path, concurrent_streams: int | None) -> None:
    """Write every seller's verdict to OUT (.csv or .geojson)."""
    if out.suffix not in (".csv", ".geojson"):
        raise click.BadParameter("must end in .csv or .geojson", param_hint="OUT")
    with _sessions()() as session:
        rows = reasons.explained(readiness.seller_rows(_inputs(session, concurrent_streams)), "en")
    out.write_bytes(
        io.records_csv(reasons.flat(rows)) if out.suffix == ".csv" else io.records_geojson(rows)
    )
    click.echo(f"Wrote {len(rows)} verdicts to {out}")


@readiness_group.command("events")
@click.option("--streams", type=click.IntRange(1, 10_000), required=True)
@click.option(
    "--quality",
    type=click.Choice(LIVE_CLASSES),
    default="hd_live",
    show_default=True,
)
@click.option("--travel-km", type=click.FloatRange(0, 200), default=10.0, show_default=True)
@click.option(
    "--candidates",
    type=click.Choice(["villages", "communes"]),
    default="communes",
    show_default=True,
)
@click.option("--top", default=10, show_default=True)
@click.option("--lang", type=click.Choice(["en", "vi"]), default="en", show_default=True)
def readiness_events(
    streams: int, quality: str, travel_km: float, candidates: str, top: int, lang: str
) -> None:
    """Rank event places for STREAMS simultaneous streams at QUALITY, and explain each."""
    with _sessions()() as session:
        ranked = readiness.event_places(
            _inputs(session, None),
            streams=streams,
            quality=quality,
            travel_radius_m=travel_km * 1000,
            candidates=candidates,
        )
    for option in ranked.rows[:top]:
        why = reasons.explain(option["reason"], lang)
        click.echo(f"{option['rank']:>3}. {option['name']} ({option['code']}): {why}")
    for alternative in ranked.alternatives:
        click.echo(reasons.explain(alternative, lang, ranked.names))


siting_group = RegistryGroup("siting", help="Choose new sites and their backhaul for a budget.")


@siting_group.command("run")
@click.option("--candidates", type=click.IntRange(1, 20_000), default=2000, show_default=True)
@click.option("--max-sites", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option(
    "--budget",
    "budget_mvnd",
    type=click.FloatRange(0),
    default=None,
    help="Budget in million VND (default: no budget, only --max-sites).",
)
@click.option(
    "--spacing-km",
    type=click.FloatRange(0),
    default=3.0,
    show_default=True,
    help="Minimum distance between chosen sites.",
)
@click.option("--candidate-spacing-km", type=click.FloatRange(0.1), default=1.0, show_default=True)
@click.option("--method", type=click.Choice(["ip", "greedy"]), default="ip", show_default=True)
@click.option("--top", default=10, show_default=True, help="Sites to print.")
def siting_run(
    candidates: int,
    max_sites: int,
    budget_mvnd: float | None,
    spacing_km: float,
    candidate_spacing_km: float,
    method: str,
    top: int,
) -> None:
    """Choose sites (lazy greedy or the HiGHS integer program), print them, map them."""
    with _sessions()() as session:
        result = siting.run_siting(
            current_app.config,
            session,
            candidates=candidates,
            max_sites=max_sites,
            budget_mvnd=budget_mvnd,
            spacing_km=spacing_km,
            candidate_spacing_km=candidate_spacing_km,
            method=method,
        )
    gap = "" if result["mip_gap"] is None else f", MIP gap {result['mip_gap']:.2e}"
    click.echo(
        f"{result['method']} ({result['status']}{gap}): {len(result['sites'])} sites "
        f"of {result['candidates']} candidates, cost {result['cost_mvnd']:,.0f} M VND, "
        f"{result['wall_s']} s"
    )
    for rank, site in enumerate(result["sites"][:top], start=1):
        click.echo(
            f"{rank:>3}. {site['code']} ({site['lon']:.4f}, {site['lat']:.4f}) "
            f"{site['total_cost_mvnd']:,.0f} M VND, backhaul {site['backhaul']}: lifts "
            f"{site['sellers_lifted']} sellers, {site['population_lifted']:,} people"
        )
    frame = gpd.GeoDataFrame(
        [{k: v for k, v in s.items() if k != "lifted"} for s in result["sites"]],
        geometry=gpd.points_from_xy(
            [s["lon"] for s in result["sites"]], [s["lat"] for s in result["sites"]]
        ),
        crs="EPSG:4326",
    )
    out = Path(current_app.config["MAPS_DIR"]) / "siting.html"
    render_registry_map(out, extra={"siting": frame})
    click.echo(f"Map: {out}")


scenario_group = RegistryGroup("scenario", help="What-if scenarios: save, preview, promote.")


@scenario_group.command("save")
@click.argument("name")
@click.argument("changes", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def scenario_save(name: str, changes: Path) -> None:
    """Save scenario NAME from a JSON file: a list of {action, layer, code, data}."""
    try:
        doc = json.loads(changes.read_text("utf-8"))
        scenarios.save(_sessions(), name, doc)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{changes} is not JSON: {exc}") from None
    click.echo(f"Saved scenario {name} ({len(doc)} changes)")


@scenario_group.command("preview")
@click.argument("name")
def scenario_preview(name: str) -> None:
    """What NAME changes (the registry is not touched)."""
    result = scenarios.preview(current_app.config, _sessions(), name)
    for key, delta in result["kpi_delta"].items():
        if delta:
            click.echo(f"  {key}: {delta:+.2%}")
    for kind in ("sellers", "villages"):
        for row in result[kind]:
            click.echo(
                f"  {kind[:-1]} {row['code']} {row['name']}: {row['before']} → {row['after']}"
            )
    click.echo(
        f"Population gaining a class: {result['population_gaining']:,}; "
        f"losing: {result['population_losing']:,}"
    )


@scenario_group.command("promote")
@click.argument("name")
def scenario_promote(name: str) -> None:
    """Add NAME's new sites (and their sectors) to the registry as planned."""
    result = scenarios.promote(_sessions(), name, actor="cli")
    click.echo(f"Added as planned: {', '.join(result['sites'])}")


users_group = RegistryGroup(
    "users", help="Accounts: create users (the first admin too), roles, API tokens."
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(username: str, role: str, password_stdin: bool) -> None:
    """Create a user; `flask users create NAME --role admin` makes the first admin."""
    with db.transaction(_sessions()) as session:
        accounts.create_user(session, username, _password(password_stdin), role)
    click.echo(f"Created {role} {username}")


@users_group.command("set")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES))
@click.option("--active/--disabled", default=None, help="Allow or stop signing in.")
@click.option("--password", "new_password", is_flag=True, help="Prompt for a new password.")
@click.option("--password-stdin", is_flag=True, help="Read a new password from standard input.")
def users_set(
    username: str, role: str | None, active: bool | None, new_password: bool, password_stdin: bool
) -> None:
    """Change a user's role, status or password (their open sessions end)."""
    password = _password(password_stdin) if new_password or password_stdin else None
    with db.transaction(_sessions()) as session:
        accounts.update_user(session, username, role=role, active=active, password=password)
    click.echo(f"Updated {username}")


@users_group.command("list")
def users_list() -> None:
    """Every user with role and status."""
    with _sessions()() as session:
        for user in session.scalars(select(User).order_by(User.username)):
            click.echo(f"{user.username}\t{user.role}\t{'active' if user.active else 'disabled'}")


@users_group.command("token")
@click.argument("username")
@click.argument("name")
def users_token(username: str, name: str) -> None:
    """Issue an API token for a script; it is printed once and only its hash is kept."""
    with db.transaction(_sessions()) as session:
        _token, plain = accounts.issue_token(session, username, name)
    click.echo(plain)


region_group = RegistryGroup("region", help="Provinces of the registry.")


def _field_options(command: Any) -> Any:
    """One --FIELD-field option per commune field, naming the file's column for it."""
    for name in reversed(regions.COMMUNE_FIELDS):
        command = click.option(
            f"--{name.replace('_', '-')}-field",
            f"{name}_field",
            default=None,
            help=f"The file's column holding the commune {name} (default: {name}).",
        )(command)
    return command


@region_group.command("init")
@click.argument("name")
@click.option(
    "--boundaries",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="GeoJSON or GeoPackage of the province's commune polygons with codes and names.",
)
@click.option("--layer", default=None, help="Layer of a GeoPackage with several.")
@_field_options
def region_init(name: str, boundaries: Path, layer: str | None, **fields: str | None) -> None:
    """Create province NAME and its communes from a boundaries file, all or nothing."""
    frame = regions.read_boundaries(
        boundaries,
        fields={k.removesuffix("_field"): v for k, v in fields.items() if v},
        layer=layer,
    )
    with db.transaction(_sessions()) as session:
        report = regions.init_region(session, name, frame, actor="cli")
    click.echo(
        f"Province {report.province}: {report.communes} communes, {report.area_km2:,} km², "
        f"population {report.population:,}, bounds {list(report.bounds)}"
    )


def init_app(app: Flask) -> None:
    for command in (
        db_group,
        jobs_group,
        import_command,
        dem_group,
        population_group,
        export_command,
        render_map,
        fieldpack,
        demo,
        coverage,
        readiness_group,
        siting_group,
        scenario_group,
        users_group,
        region_group,
    ):
        app.cli.add_command(command)
