"""Record use cases behind the pages and the API: the dashboard, list and detail views with
their verdicts, and site edits with the rule that antennas move with the tower.

A sector's ``height_m`` is its antenna's height above the site's ground; it is what coverage,
readiness and the verdicts use. A site's ``tower_height_m`` is the structure: changing it moves
every antenna on it by the same amount (`update_record`, used by the edit page and the API
alike), unless the caller says not to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from registry import store
from registry.errors import NotFoundError
from registry.models import BY_LAYER, Audit, Record, Sector, Site
from registry.radio.linkbudget import SERVICE_CLASSES
from registry.services import queries
from registry.services import readiness as readiness_service
from registry.services.readiness import ReadinessInputs

Config = Mapping[str, Any]
#: Service classes from best to worst, for tables and charts.
CLASS_ORDER = tuple(reversed(SERVICE_CLASSES))


def _inputs_or_none(config: Config, session: Session) -> ReadinessInputs | None:
    """The readiness inputs, or None while there is no DEM or coverage yet."""
    try:
        return readiness_service.load_inputs(config, session)
    except NotFoundError:
        return None


# ---------------------------------------------------------------- dashboard
@dataclass(frozen=True)
class Dashboard:
    counts: dict[str, int]
    kpis: readiness_service.Kpis
    verdict_counts: dict[str, int]
    n_sellers: int
    provinces: list[str]


def dashboard(config: Config, session: Session, *, province: str | None = None) -> Dashboard:
    """Record counts, the KPI table (of ``province``, or of all) and the sellers' verdicts."""
    inputs = _inputs_or_none(config, session)
    verdicts = readiness_service.seller_rows(inputs) if inputs else []
    kpis = (
        readiness_service.kpis(inputs, verdicts, province=province)
        if inputs is not None and inputs.villages
        else readiness_service.Kpis([], None)
    )
    by_class = Counter(v["service_class"] for v in verdicts)
    return Dashboard(
        counts=queries.layer_counts(session),
        kpis=kpis,
        verdict_counts={name: by_class[name] for name in CLASS_ORDER},
        n_sellers=len(verdicts),
        provinces=store.provinces(session),
    )


def province_frames(frames: Mapping[str, Any], province: str) -> dict[str, Any]:
    """Map layers (GeoDataFrames by layer name) cut to one province: its communes, the
    villages and sites in them, those villages' sellers and the fibre links reaching it.
    NotFoundError when no commune is in ``province``."""
    communes = frames["communes"]
    mine = communes[communes["province"] == province]
    if mine.empty:
        known = ", ".join(sorted(set(communes["province"]))) or "none"
        raise NotFoundError(f"no province {province!r}; known: {known}")
    out = dict(frames, communes=mine)
    codes = set(mine["code"])
    for layer in ("villages", "sites"):
        if layer in frames:
            out[layer] = frames[layer][frames[layer]["commune_code"].isin(codes)]
    if "sellers" in frames and "villages" in out:
        sellers = frames["sellers"]
        out["sellers"] = sellers[sellers["village_code"].isin(set(out["villages"]["code"]))]
    if "fibre_links" in frames:
        links = frames["fibre_links"]
        out["fibre_links"] = links[links.intersects(mine.union_all())]
    return out


def layers_stamp(session: Session, layers: Sequence[str]) -> tuple[Any, ...]:
    """Each layer's size and last change: what a cached map of those layers depends on."""
    return tuple(queries.layer_stamp(session, BY_LAYER[layer]) for layer in layers)


# ---------------------------------------------------------------- lists and details
def model(layer: str) -> type[Record]:
    if layer not in BY_LAYER:
        raise NotFoundError(f"no layer {layer!r}; layers: {', '.join(BY_LAYER)}")
    return BY_LAYER[layer]


@dataclass(frozen=True)
class RecordList:
    """One page of a layer's records (their ``columns``) with what the list shows beside."""

    rows: list[dict[str, Any]]
    total: int
    communes: list[tuple[str, str]]
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    sectors: dict[str, list[Sector]] = field(default_factory=dict)
    coverage_missing: bool = False


def record_list(
    config: Config,
    session: Session,
    layer: str,
    *,
    columns: Sequence[str],
    q: str | None,
    commune: str | None,
    choices: Mapping[str, str | None],
    verdict: str | None,
    page: int,
    page_size: int,
) -> RecordList:
    """Records matching the search, commune and value filters (sellers also by verdict), one
    page of them; sellers come with their verdicts, sites with their sectors."""
    found = store.list_records(session, model(layer), q=q, commune=commune)
    rows = [r for r in found if all(v is None or getattr(r, k) == v for k, v in choices.items())]
    verdicts: dict[str, dict[str, Any]] = {}
    coverage_missing = False
    if layer == "sellers":
        inputs = _inputs_or_none(config, session)
        coverage_missing = inputs is None
        if inputs is not None:
            verdicts = {v["code"]: v for v in readiness_service.seller_rows(inputs)}
        if verdict:
            rows = [r for r in rows if verdicts.get(r.code, {}).get("service_class") == verdict]
    total = len(rows)
    rows = rows[(page - 1) * page_size : page * page_size]
    sectors: dict[str, list[Sector]] = {}
    if layer == "sites":
        for sector in queries.sectors_of(session, [r.code for r in rows]):
            sectors.setdefault(sector.site_code, []).append(sector)
    return RecordList(
        rows=[{c: getattr(r, c) for c in columns} for r in rows],
        total=total,
        communes=queries.commune_choices(session),
        verdicts=verdicts,
        sectors=sectors,
        coverage_missing=coverage_missing,
    )


@dataclass(frozen=True)
class RecordDetail:
    """A record with what its page shows: a site's sectors, served area and nearby sellers'
    verdicts; a seller's own verdict."""

    record: Record
    sectors: list[Sector] = field(default_factory=list)
    served: dict[str, dict[str, float]] = field(default_factory=dict)
    near: list[dict[str, Any]] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    coverage_missing: bool = False


def record_detail(config: Config, session: Session, layer: str, code: str) -> RecordDetail:
    """A record and its page's extras; only the verdicts shown are computed."""
    found = store.get_record(session, model(layer), code)
    if layer not in ("sites", "sellers"):
        return RecordDetail(found)
    inputs = _inputs_or_none(config, session)
    sectors = queries.sectors_of(session, [code]) if layer == "sites" else []
    if inputs is None:
        return RecordDetail(found, sectors, coverage_missing=True)
    if layer == "sellers":
        return RecordDetail(found, verdict=readiness_service.seller_verdict(inputs, code))
    return RecordDetail(
        found,
        sectors,
        served=inputs.coverage.served_area(code),
        near=readiness_service.sellers_near_site(
            inputs, code, radius_m=float(config["COVERAGE_MAX_RADIUS_M"])
        ),
    )


#: Fields that refer to another record, and that record's layer.
REFERENCES = {"commune_code": "communes", "village_code": "villages", "site_code": "sites"}


def reference_names(session: Session, values: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """(layer, name) of each record that ``values`` refers to, by field (a seller's village,
    a village's commune), so pages show names rather than codes."""
    out = {}
    for name, layer in REFERENCES.items():
        code = values.get(name)
        if not code:
            continue
        try:
            found = store.get_record(session, model(layer), code)
        except NotFoundError:
            continue
        out[name] = (layer, getattr(found, "name", None) or code)
    return out


def history(session: Session, layer: str, code: str) -> tuple[list[Audit], int | None]:
    """A record's audit entries (oldest first) and its current version (None if deleted)."""
    kind = model(layer)
    entries = store.history(session, kind, code)
    current = store.find_by_codes(session, kind, [code]).get(code)
    if not entries:
        raise NotFoundError(f"no history for {layer} {code!r}")
    return entries, current.version if current is not None else None


def site_sectors(session: Session, code: str) -> list[Sector]:
    return queries.sectors_of(session, [code])


# ---------------------------------------------------------------- edits
def update_record(
    session: Session,
    kind: type[Record],
    code: str,
    data: Mapping[str, Any],
    *,
    expected_version: int | None,
    actor: str,
    area_bbox: Any,
    move_antennas: bool = True,
) -> Record:
    """Update a record through the store; for a site whose tower height changes, each of its
    sectors' antenna heights moves by the same amount (kept within 0 and the new tower
    height) unless ``move_antennas`` is false."""
    stored = store.get_record(session, kind, code)
    before = stored.tower_height_m if isinstance(stored, Site) else None
    updated = store.update_record(
        session,
        kind,
        code,
        data,
        expected_version=expected_version,
        actor=actor,
        area_bbox=area_bbox,
    )
    if isinstance(updated, Site) and move_antennas and before is not None:
        move_antennas_with_tower(session, updated, before, actor=actor)
    return updated


def move_antennas_with_tower(session: Session, site: Site, old_m: float, *, actor: str) -> None:
    """Shift each of ``site``'s sector antennas by the tower's change from ``old_m``."""
    new_m = float(site.tower_height_m)
    delta = new_m - float(old_m)
    if not delta:
        return
    for sector in queries.sectors_of(session, [site.code]):
        store.update_record(
            session,
            Sector,
            sector.code,
            {"height_m": max(0.0, min(new_m, sector.height_m + delta))},
            expected_version=sector.version,
            actor=actor,
            area_bbox=None,
        )
