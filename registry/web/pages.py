"""HTML pages: dashboard, record lists with search and filters, details, edit forms, import,
the event-location tool, the live map, and background jobs with progress.

Views are thin: they parse the request, call one ``registry.services`` function (or
``registry.store`` / ``registry.io``) and render; validation and its messages are the store's, as
for the API.
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
from werkzeug.security import safe_join

from registry import io, jobs, schemas, store, tasks
from registry.confidence import LEVELS
from registry.db import transaction
from registry.errors import ConflictError, NotFoundError, RegistryError, ValidationError
from registry.models import BY_LAYER, Seller
from registry.radio.linkbudget import LIVE_CLASSES
from registry.services import coverage, readiness
from registry.services import measurements as measurement_service
from registry.services import records as record_service
from registry.web import forms, i18n, mapviews, reasons, safe_next, sessions
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


def confidence_titles() -> dict[str, str]:
    return {
        "likely": _("Likely"),
        "borderline": _("Borderline: test on site first"),
        "unlikely": _("Unlikely"),
    }


@bp.app_context_processor
def _page_globals() -> dict[str, Any]:
    return {
        "layer_titles": layer_titles(),
        "class_titles": class_titles(),
        "confidence_titles": confidence_titles(),
        "confidence_levels": LEVELS,
        "list_layers": LIST_LAYERS,
        "field_label": forms.label,
        "class_order": record_service.CLASS_ORDER,
    }


def _app() -> Any:
    return current_app._get_current_object()  # type: ignore[attr-defined]


# ---------------------------------------------------------------- dashboard, language
@bp.get("/")
def home() -> Any:
    province = request.args.get("province") or None
    with sessions()() as session:
        board = record_service.dashboard(current_app.config, session, province=province)
    maps = sorted(p.name for p in Path(current_app.config["MAPS_DIR"]).glob("*.html"))
    return render_template(
        "dashboard.html",
        counts=board.counts,
        kpis=board.kpis.rows,
        stated=board.kpis.stated_figures,
        verdict_counts=board.verdict_counts,
        n_sellers=board.n_sellers,
        maps=maps,
        confidence_thresholds=(
            current_app.config["READINESS_LIKELY_MIN_P"],
            current_app.config["READINESS_UNLIKELY_MAX_P"],
        ),
        provinces=board.provinces,
        province=province,
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
@bp.get("/map")
def map_page() -> Any:
    """The registry map, live: every layer over the service-class coverage (works offline);
    ``?province=NAME`` shows one province's records and fits the view to it."""
    province = request.args.get("province") or None
    version = coverage.current_or_none(current_app.config)
    tif = version.path("service_class") if version is not None else None
    header = mapviews.header_links(
        [
            (url_for("pages.home"), _("Dashboard")),
            (url_for("pages.records", layer="sellers"), _("Sellers")),
            (url_for("pages.events"), _("Event location")),
        ]
    )
    with sessions()() as session:
        key = (
            current_app.config["DATABASE_URL"],
            record_service.layers_stamp(session, (*MAP_LAYERS, "measurements")),
            measurement_service.correction_in_force(session)[0],
            str(tif),
            str(i18n.get_locale()),
            mapviews.dem_stamp(current_app.config),
            province,
        )

        def build() -> str:
            frames = {name: io.layer_frame(session, BY_LAYER[name]) for name in MAP_LAYERS}
            if version is not None and len(frames["sellers"]):
                sure = readiness.seller_confidence(
                    readiness.load_inputs(current_app.config, session)
                )
                frames["sellers"]["confidence"] = frames["sellers"]["code"].map(sure)
            if province is not None:
                frames = record_service.province_frames(frames, province)
            errors = (
                (
                    measurement_service.error_features(
                        current_app.config, session, province=province
                    ),
                    _("Measurements: prediction error"),
                )
                if version is not None
                else None
            )
            return mapviews.registry_map_page(
                frames,
                service_class_tif=tif,
                header_html=header,
                relief=mapviews.relief(current_app.config),
                measurement_errors=errors,
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
@bp.get("/records/<layer>")
def records(layer: str) -> Any:
    """A layer's records: search by name (diacritics ignored), filter by commune and values."""
    model = record_service.model(layer)
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
        found = record_service.record_list(
            current_app.config,
            session,
            layer,
            columns=LIST_COLUMNS[layer],
            q=q,
            commune=commune,
            choices=choice_filters,
            verdict=verdict_filter,
            page=page,
            page_size=PAGE_SIZE,
        )
    choices = {
        name: model.__table__.c[name].info.get("choices", ())
        for name in CHOICE_FILTERS.get(layer, ())
    }
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "records.html",
        layer=layer,
        columns=LIST_COLUMNS[layer],
        rows=found.rows,
        total=found.total,
        page=page,
        page_size=PAGE_SIZE,
        q=q or "",
        commune=commune or "",
        communes=found.communes,
        choices=choices,
        chosen=choice_filters,
        verdicts=found.verdicts,
        sectors=found.sectors,
        verdict_filter=verdict_filter or "",
        args=args,
        coverage_missing=found.coverage_missing,
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


@bp.app_template_filter("explain")
def explain_reason(reason: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """A reason (``{"code", "params"}``) as a sentence in the page's language."""
    return reasons.explain(reason, names=names)


@bp.app_template_global()
def better_spot_url(verdict: dict[str, Any]) -> str | None:
    return _spot_url(verdict)


@bp.get("/records/<layer>/<code>")
def record(layer: str, code: str) -> Any:
    model = record_service.model(layer)
    with sessions()() as session:
        detail = record_service.record_detail(current_app.config, session, layer, code)
        values = forms.record_values(detail.record)
        refs = record_service.reference_names(session, values)
        measured = (
            measurement_service.seller_measurements(session, detail.record)
            if isinstance(detail.record, Seller)
            else []
        )
    point = (values.get("lat"), values.get("lon")) if "lat" in values else None
    job = _finished_job(request.args.get("job", ""))
    return render_template(
        "record.html",
        layer=layer,
        code=code,
        values=values,
        fields=forms.record_fields(model, values, editing=False),
        sectors=detail.sectors,
        served=detail.served,
        near=detail.near,
        verdict=detail.verdict,
        refs=refs,
        point=point,
        coverage_missing=detail.coverage_missing,
        job=job,
        measured=measured,
    )


@bp.get("/records/<layer>/<code>/history")
def record_history(layer: str, code: str) -> Any:
    """Who changed the record, when and what; editors restore an earlier state from here."""
    with sessions()() as session:
        found, current_version = record_service.history(session, layer, code)
        entries = [schemas.audit_entry(e) for e in found]
    return render_template(
        "history.html",
        layer=layer,
        code=code,
        entries=entries[::-1],
        current_version=current_version,
    )


@bp.post("/records/<layer>/<code>/restore")
def restore(layer: str, code: str) -> Any:
    model = record_service.model(layer)
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
    model = record_service.model(layer)
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
        for s in record_service.site_sectors(session, code)
    ]


@bp.route("/records/<layer>/new", methods=["GET", "POST"])
@requires("editor")
def create(layer: str) -> Any:
    model = record_service.model(layer)
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
    model = record_service.model(layer)
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
            record_service.update_record(
                session,
                model,
                code,
                data,
                expected_version=version,
                actor=actor(),
                area_bbox=current_app.config["AREA_BBOX"],
                move_antennas="move_antennas" in request.form,
            )
    except (ValidationError, ConflictError) as exc:
        values = {**forms.posted_values(model, request.form), "version": stored["version"]}
        return _render_form(
            layer, code, values, exc.details, exc.message, status=exc.status, sectors=sector_rows
        )
    return redirect(url_for("pages.record", layer=layer, code=code, saved=1), code=303)


# ---------------------------------------------------------------- background jobs
@bp.post("/coverage/recompute")
def recompute() -> Any:
    """Start the coverage computation in the background; follow it on its job page."""
    coverage.working_dem(current_app.config)  # no DEM: explain now, not in a failed job
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
    params: dict[str, Any] = {
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
    ranked: readiness.EventPlaces | None = None
    error: RegistryError | None = None
    if form["streams"]:
        try:
            ranked = _rank_events(form)
        except (ValidationError, NotFoundError) as exc:
            error = exc
    return render_template(
        "events.html", form=form, ranked=ranked, error=error, qualities=QUALITIES
    ), (error.status if error else 200)


def _rank_events(form: dict[str, str]) -> readiness.EventPlaces:
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
        return readiness.event_places(
            readiness.load_inputs(current_app.config, session),
            streams=streams,
            quality=form["quality"],
            travel_radius_m=travel_km * 1000,
            candidates=form["candidates"],
        )
