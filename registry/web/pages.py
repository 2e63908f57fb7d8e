"""HTML pages: dashboard, record lists with search and filters, details, edit forms, import,
the event-location tool, the live map, and background jobs with progress.

Views are thin: they parse the request, call ``registry.store`` / ``registry.pipeline`` /
``registry.io`` and render; validation and its messages are the store's, as for the API.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.security import safe_join

from registry import io, jobs, pipeline, schemas, store, tasks
from registry.db import transaction
from registry.errors import ConflictError, NotFoundError, RegistryError, ValidationError
from registry.models import BY_LAYER, Commune, Record, Sector
from registry.radio.linkbudget import LIVE_CLASSES
from registry.web import forms, i18n, mapviews, safe_next, sessions, summaries
from registry.web.auth import PUBLIC, actor, requires, with_nonce

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__, template_folder="templates")

#: Layers with a list page, in menu order.
LIST_LAYERS = (
    "communes",
    "villages",
    "sites",
    "fibre_links",
    "sellers",
    "measurements",
    "events",
    "fibre_nodes",
)
#: Columns of each layer's list.
LIST_COLUMNS = {
    "communes": ("code", "name", "type", "population", "area_km2"),
    "villages": ("code", "name", "commune_code", "population", "households"),
    "sites": (
        "code",
        "name",
        "operator",
        "commune_code",
        "tower_height_m",
        "status",
        "backhaul_kind",
    ),
    "fibre_links": ("code", "from_node_code", "to_node_code", "road", "capacity_mbps", "status"),
    "sellers": ("code", "name", "village_code", "products", "phone_tech", "wanted_class"),
    "measurements": (
        "code",
        "kind",
        "measured_at",
        "technology",
        "site_code",
        "rsrp_dbm",
        "dl_rate_mbps",
        "ul_rate_mbps",
    ),
    "events": ("code", "name", "commune_code", "start", "streams", "orders"),
    "fibre_nodes": ("code", "name", "kind"),
}
#: Filters by a column's allowed values, per layer.
CHOICE_FILTERS = {
    "sites": ("status", "backhaul_kind", "operator"),
    "fibre_links": ("status",),
    "sellers": ("phone_tech", "wanted_class"),
    "measurements": ("kind", "technology"),
    "fibre_nodes": ("kind",),
}
#: Map layers, in drawing order.
MAP_LAYERS = ("communes", "fibre_links", "sites", "villages", "sellers")
PAGE_SIZE = 50
QUALITIES = LIVE_CLASSES


def layer_titles() -> dict[str, str]:
    return {
        "communes": _("Communes"),
        "villages": _("Villages"),
        "sites": _("Sites"),
        "sectors": _("Sectors"),
        "fibre_links": _("Fibre links"),
        "fibre_nodes": _("Fibre nodes"),
        "sellers": _("Sellers"),
        "measurements": _("Measurements"),
        "events": _("Livestream events"),
    }


def class_titles() -> dict[str, str]:
    return {
        "fullhd_live": _("Live 1080p"),
        "hd_live": _("Live 720p"),
        "sd_live": _("Live 480p"),
        "basic_live": _("Live 360p"),
        "data_only": _("Data only"),
        "none": _("No service"),
        "nodata": _("Outside"),
    }


@bp.app_context_processor
def _page_globals() -> dict[str, Any]:
    return {
        "layer_titles": layer_titles(),
        "class_titles": class_titles(),
        "list_layers": LIST_LAYERS,
        "field_label": forms.label,
        "class_order": summaries.CLASS_ORDER,
    }


def _model(layer: str) -> type[Record]:
    if layer not in BY_LAYER:
        raise NotFoundError(f"no layer {layer!r}; layers: {', '.join(BY_LAYER)}")
    return BY_LAYER[layer]


def _app() -> Any:
    return current_app._get_current_object()  # type: ignore[attr-defined]


def _readiness(session: Any) -> pipeline.ReadinessInputs | None:
    """The readiness inputs, or None while there is no DEM or coverage yet."""
    try:
        return pipeline.ReadinessInputs(
            current_app.config, session, pipeline.readiness_params(current_app.config)
        )
    except NotFoundError:
        return None


# ---------------------------------------------------------------- dashboard, language
@bp.get("/")
def home() -> Any:
    with sessions()() as session:
        counts = {
            layer: session.scalar(select(func.count()).select_from(model))
            for layer, model in BY_LAYER.items()
        }
        inputs = _readiness(session)
        kpis = pipeline.kpi_table(inputs) if inputs is not None and inputs.villages else []
        verdicts = pipeline.seller_readiness(inputs) if inputs is not None else []
    stated = pipeline.readiness.stated_figures_check(kpis[0]) if kpis else None
    verdict_counts = {
        name: sum(v["service_class"] == name for v in verdicts) for name in summaries.CLASS_ORDER
    }
    maps = sorted(p.name for p in Path(current_app.config["MAPS_DIR"]).glob("*.html"))
    return render_template(
        "dashboard.html",
        counts=counts,
        kpis=kpis,
        stated=stated,
        verdict_counts=verdict_counts,
        n_sellers=len(verdicts),
        maps=maps,
    )


@bp.get("/lang/<code>")
@requires(PUBLIC)  # the sign-in page switches language too
def set_language(code: str) -> Any:
    if code not in i18n.LANGUAGES:
        abort(404)
    response = redirect(safe_next(url_for("pages.home")), code=303)
    response.set_cookie(i18n.COOKIE, code, max_age=i18n.COOKIE_MAX_AGE_S, samesite="Lax")
    return response


# ---------------------------------------------------------------- maps
def _map_key(session: Any, tif: Path) -> tuple[Any, ...]:
    """What the map depends on: each layer's size and last change, the coverage raster."""
    state = []
    for layer in MAP_LAYERS:
        model = BY_LAYER[layer]
        state.append(
            tuple(
                session.execute(
                    select(func.count(), func.max(model.updated_at)).select_from(model)
                ).one()
            )
        )
    stamp = tif.stat().st_mtime_ns if tif.exists() else None
    return (
        current_app.config["DATABASE_URL"],
        tuple(state),
        str(tif),
        stamp,
        str(i18n.get_locale()),
    )


@bp.get("/map")
def map_page() -> Any:
    """The registry map, live: every layer over the service-class coverage (works offline)."""
    tif = pipeline.coverage_dir(current_app.config) / "coverage_service_class.tif"
    header = mapviews.header_links(
        [
            (url_for("pages.home"), _("Dashboard")),
            (url_for("pages.records", layer="sellers"), _("Sellers")),
            (url_for("pages.events"), _("Event location")),
        ]
    )
    with sessions()() as session:
        key = _map_key(session, tif)

        def build() -> str:
            frames = {name: io.layer_frame(session, BY_LAYER[name]) for name in MAP_LAYERS}
            return mapviews.registry_map_page(
                frames, service_class_tif=tif if tif.exists() else None, header_html=header
            )

        html = mapviews.cached_map_page(key, build)
    return make_response(with_nonce(html))


@bp.get("/maps/<name>")
def rendered_map(name: str) -> Any:
    if not name.endswith(".html"):
        abort(404)
    path = safe_join(current_app.config["MAPS_DIR"], name)
    if path is None or not Path(path).is_file():
        abort(404)
    return make_response(with_nonce(Path(path).read_text(encoding="utf-8")))


# ---------------------------------------------------------------- lists and details
def _communes(session: Any) -> list[tuple[str, str]]:
    return [(c.code, c.name) for c in session.scalars(select(Commune).order_by(Commune.name))]


@bp.get("/records/<layer>")
def records(layer: str) -> Any:
    """A layer's records: search by name (diacritics ignored), filter by commune and values."""
    model = _model(layer)
    q = request.args.get("q", "").strip() or None
    commune = request.args.get("commune") or None
    choice_filters = {
        name: request.args.get(name) or None for name in CHOICE_FILTERS.get(layer, ())
    }
    verdict_filter = request.args.get("verdict") or None
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    with sessions()() as session:
        found = store.list_records(session, model, q=q, commune=commune)
        rows = [
            r
            for r in found
            if all(v is None or getattr(r, k) == v for k, v in choice_filters.items())
        ]
        verdicts: dict[str, dict[str, Any]] = {}
        sectors: dict[str, list[Any]] = {}
        coverage_missing = False
        if layer == "sellers":
            inputs = _readiness(session)
            coverage_missing = inputs is None
            if inputs is not None:
                verdicts = {v["code"]: v for v in pipeline.seller_readiness(inputs)}
            if verdict_filter:
                rows = [
                    r
                    for r in rows
                    if verdicts.get(r.code, {}).get("service_class") == verdict_filter
                ]
        total = len(rows)
        rows = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        if layer == "sites":
            for sector in session.scalars(
                select(Sector)
                .where(Sector.site_code.in_([r.code for r in rows]))
                .order_by(Sector.code)
            ):
                sectors.setdefault(sector.site_code, []).append(sector)
        communes = _communes(session)
        values = [{c: getattr(r, c) for c in LIST_COLUMNS[layer]} for r in rows]
    choices = {
        name: model.__table__.c[name].info.get("choices", ())
        for name in CHOICE_FILTERS.get(layer, ())
    }
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "records.html",
        layer=layer,
        columns=LIST_COLUMNS[layer],
        rows=values,
        total=total,
        page=page,
        page_size=PAGE_SIZE,
        q=q or "",
        commune=commune or "",
        communes=communes,
        choices=choices,
        chosen=choice_filters,
        verdicts=verdicts,
        sectors=sectors,
        verdict_filter=verdict_filter or "",
        args=args,
        coverage_missing=coverage_missing,
    )


def _spot_url(verdict: dict[str, Any]) -> str | None:
    if verdict.get("better_spot_lon") is None:
        return None
    return url_for(
        "pages.map_page",
        lat=verdict["better_spot_lat"],
        lon=verdict["better_spot_lon"],
        zoom=16,
        label=_("Better spot"),
    )


@bp.app_template_global()
def better_spot_url(verdict: dict[str, Any]) -> str | None:
    return _spot_url(verdict)


@bp.get("/records/<layer>/<code>")
def record(layer: str, code: str) -> Any:
    model = _model(layer)
    with sessions()() as session:
        found = store.get_record(session, model, code)
        values = forms.record_values(found)
        sectors = (
            list(
                session.scalars(
                    select(Sector).where(Sector.site_code == code).order_by(Sector.code)
                )
            )
            if layer == "sites"
            else []
        )
        served: dict[str, dict[str, float]] = {}
        near: list[dict[str, Any]] = []
        verdict = None
        coverage_missing = False
        if layer in ("sites", "sellers"):
            inputs = _readiness(session)
            coverage_missing = inputs is None
            if inputs is not None:
                verdicts = pipeline.seller_readiness(inputs)
                if layer == "sites":
                    served = summaries.site_served_area(current_app.config, code)
                    near = summaries.sellers_near(
                        verdicts,
                        site_code=code,
                        lon=found.geom.x,
                        lat=found.geom.y,
                        radius_m=float(current_app.config["COVERAGE_MAX_RADIUS_M"]),
                    )
                else:
                    verdict = next((v for v in verdicts if v["code"] == code), None)
    point = (values.get("lat"), values.get("lon")) if "lat" in values else None
    job = _finished_job(request.args.get("job", ""))
    return render_template(
        "record.html",
        layer=layer,
        code=code,
        values=values,
        fields=forms.record_fields(model, values, editing=False),
        sectors=sectors,
        served=served,
        near=near,
        verdict=verdict,
        point=point,
        coverage_missing=coverage_missing,
        job=job,
    )


@bp.get("/records/<layer>/<code>/history")
def record_history(layer: str, code: str) -> Any:
    """Who changed the record, when and what; editors restore an earlier state from here."""
    model = _model(layer)
    with sessions()() as session:
        entries = [schemas.audit_entry(e) for e in store.history(session, model, code)]
        current = store.find_by_codes(session, model, [code]).get(code)
        current_version = current.version if current is not None else None
    if not entries:
        raise NotFoundError(f"no history for {layer} {code!r}")
    return render_template(
        "history.html",
        layer=layer,
        code=code,
        entries=entries[::-1],
        current_version=current_version,
    )


@bp.post("/records/<layer>/<code>/restore")
def restore(layer: str, code: str) -> Any:
    model = _model(layer)
    try:
        audit_id = int(request.form.get("audit_id", ""))
        version = int(request.form["version"]) if request.form.get("version") else None
    except ValueError:
        raise ValidationError(
            "bad restore form", details=[{"field": "audit_id", "reason": "must be an integer"}]
        ) from None
    with transaction(sessions()) as session:
        store.restore_record(
            session, model, code, audit_id, expected_version=version, actor=actor()
        )
    return redirect(url_for("pages.record", layer=layer, code=code, saved=1), code=303)


# ---------------------------------------------------------------- forms
def _render_form(
    layer: str,
    code: str | None,
    values: dict[str, Any],
    details: list[dict[str, Any]],
    message: str = "",
    *,
    status: int = 200,
    sectors: list[dict[str, Any]] | None = None,
) -> Any:
    model = _model(layer)
    errors = forms.errors_by_field(details)
    return render_template(
        "form.html",
        layer=layer,
        code=code,
        values=values,
        fields=forms.record_fields(model, values, editing=code is not None),
        errors=errors,
        details=details,
        message=message,
        sectors=sectors or [],
    ), status


def _sector_rows(session: Any, code: str) -> list[dict[str, Any]]:
    return [
        {
            "code": s.code,
            "height_m": s.height_m,
            "technology": s.technology,
            "azimuth_deg": s.azimuth_deg,
        }
        for s in session.scalars(
            select(Sector).where(Sector.site_code == code).order_by(Sector.code)
        )
    ]


@bp.route("/records/<layer>/new", methods=["GET", "POST"])
@requires("editor")
def create(layer: str) -> Any:
    model = _model(layer)
    if request.method == "GET":
        return _render_form(layer, None, {}, [])
    data = forms.store_input(model, request.form)
    try:
        with transaction(sessions()) as session:
            made = store.create_record(
                session, model, data, actor=actor(), area_bbox=current_app.config["AREA_BBOX"]
            )
            made_code = made.code
    except (ValidationError, ConflictError) as exc:
        return _render_form(
            layer,
            None,
            forms.posted_values(model, request.form),
            exc.details,
            exc.message,
            status=exc.status,
        )
    return redirect(url_for("pages.record", layer=layer, code=made_code, saved=1), code=303)


@bp.route("/records/<layer>/<code>/edit", methods=["GET", "POST"])
@requires("editor")
def edit(layer: str, code: str) -> Any:
    """Edit a record. For a site, raising or lowering the tower moves its antennas with it
    (sector heights change by the same amount) unless that box is unticked."""
    model = _model(layer)
    with sessions()() as session:
        stored = forms.record_values(store.get_record(session, model, code))
        sector_rows = _sector_rows(session, code) if layer == "sites" else []
    if request.method == "GET":
        return _render_form(layer, code, stored, [], sectors=sector_rows)
    data = forms.store_input(model, request.form, stored=stored)
    try:
        try:
            version = int(request.form.get("version", ""))
        except ValueError:
            raise ValidationError(
                "bad version", details=[{"field": "version", "reason": "must be an integer"}]
            ) from None
        with transaction(sessions()) as session:
            updated = store.update_record(
                session,
                model,
                code,
                data,
                expected_version=version,
                actor=actor(),
                area_bbox=current_app.config["AREA_BBOX"],
            )
            if layer == "sites" and "move_antennas" in request.form:
                _move_antennas(
                    session, code, float(stored["tower_height_m"]), float(updated.tower_height_m)
                )  # type: ignore[attr-defined]
    except (ValidationError, ConflictError) as exc:
        values = {**forms.posted_values(model, request.form), "version": stored["version"]}
        return _render_form(
            layer, code, values, exc.details, exc.message, status=exc.status, sectors=sector_rows
        )
    return redirect(url_for("pages.record", layer=layer, code=code, saved=1), code=303)


def _move_antennas(session: Any, site_code: str, old_m: float, new_m: float) -> None:
    """Shift each sector's antenna height by the tower's change (validated by the store)."""
    delta = new_m - old_m
    if not delta:
        return
    for sector in list(session.scalars(select(Sector).where(Sector.site_code == site_code))):
        height = max(0.0, min(new_m, sector.height_m + delta))
        store.update_record(
            session,
            Sector,
            sector.code,
            {"height_m": height},
            expected_version=sector.version,
            actor=actor(),
            area_bbox=None,
        )


# ---------------------------------------------------------------- background jobs
@bp.post("/coverage/recompute")
def recompute() -> Any:
    """Start the coverage computation in the background; follow it on its job page."""
    pipeline.working_dem(current_app.config)  # no DEM: explain now, not in a failed job
    job_id = jobs.start(_app(), "coverage", {}, owner=actor())
    return redirect(
        url_for("pages.job", job_id=job_id, next=safe_next(url_for("pages.home"))), code=303
    )


def _finished_job(job_id: str) -> dict[str, Any] | None:
    """The job a page was sent back from (``?job=``), if there is one."""
    try:
        return jobs.get(sessions(), current_app.config, job_id) if job_id else None
    except NotFoundError:
        return None


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Any:
    return render_template(
        "job.html",
        job=jobs.get(sessions(), current_app.config, job_id),
        next=safe_next(""),
        api_url=url_for("coverage.job", job_id=job_id),
    )


@bp.post("/jobs/<job_id>/cancel")
def job_cancel(job_id: str) -> Any:
    jobs.cancel(sessions(), current_app.config, job_id)
    return redirect(url_for("pages.job", job_id=job_id, next=safe_next("")), code=303)


@bp.post("/jobs/<job_id>/rerun")
def job_rerun(job_id: str) -> Any:
    new_id = jobs.rerun(_app(), job_id, owner=actor())
    return redirect(url_for("pages.job", job_id=new_id, next=safe_next("")), code=303)


@bp.route("/import", methods=["GET", "POST"])
@requires("editor")
def import_page() -> Any:
    """Upload a file; it is read now, then stored all or nothing by a background job."""
    formats = list(io.FORMATS)
    if request.method == "GET":
        return render_template("import.html", formats=formats, layers=list(BY_LAYER), error=None)
    upload = request.files.get("file")
    data = upload.read() if upload else b""
    params = {
        "filename": upload.filename if upload else None,
        "fmt": request.form.get("format") or None,
        "layer": request.form.get("layer") or None,
        "allow_outside_area": "allow_outside_area" in request.form,
        "actor": actor(),  # the job runs after this request ends
    }
    try:
        if not data:
            raise ValidationError(
                "nothing to import", details=[{"field": "file", "reason": "is empty or missing"}]
            )
        # read now, so a malformed file is answered here rather than by a failed job
        io.read_layers(data, fmt=params["fmt"], filename=params["filename"], layer=params["layer"])
    except RegistryError as exc:
        return render_template(
            "import.html", formats=formats, layers=list(BY_LAYER), error=exc
        ), exc.status
    token = uuid.uuid4().hex  # the upload waits on disk for the job (any process may run it)
    path = tasks.upload_path(current_app.config, token)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    job_id = jobs.start(_app(), "import", {**params, "upload": token}, owner=actor())
    return redirect(url_for("pages.job", job_id=job_id), code=303)


# ---------------------------------------------------------------- event location
@bp.get("/events")
def events() -> Any:
    """Rank places for an event with N simultaneous streams at a quality."""
    form = {
        "streams": request.args.get("streams", ""),
        "quality": request.args.get("quality", "hd_live"),
        "candidates": request.args.get("candidates", "communes"),
        "travel_km": request.args.get("travel_km", "10"),
    }
    rows: list[dict[str, Any]] | None = None
    error: RegistryError | None = None
    if form["streams"]:
        try:
            rows = _rank_events(form)
        except (ValidationError, NotFoundError) as exc:
            error = exc
    return render_template("events.html", form=form, rows=rows, error=error, qualities=QUALITIES), (
        error.status if error else 200
    )


def _rank_events(form: dict[str, str]) -> list[dict[str, Any]]:
    problems = []
    try:
        streams = int(form["streams"])
        if not 1 <= streams <= 10_000:
            raise ValueError
    except ValueError:
        problems.append({"field": "streams", "reason": "must be an integer from 1 to 10000"})
    try:
        travel_km = float(form["travel_km"])
        if not 0 <= travel_km <= 200:
            raise ValueError
    except ValueError:
        problems.append({"field": "travel_km", "reason": "must be a number from 0 to 200"})
    if form["quality"] not in QUALITIES:
        problems.append({"field": "quality", "reason": f"must be one of {', '.join(QUALITIES)}"})
    if problems:
        raise ValidationError("bad event request", details=problems)
    with sessions()() as session:
        inputs = pipeline.ReadinessInputs(
            current_app.config, session, pipeline.readiness_params(current_app.config)
        )
        return pipeline.event_places(
            inputs,
            streams=streams,
            quality=form["quality"],
            travel_radius_m=travel_km * 1000,
            candidates=form["candidates"],
        )
