"""Reading and writing registry records: the one path every view, command and importer uses.

Writes check references, enforce optimistic locking and append to the audit log; a failed write
leaves nothing behind (callers run each request or import in one transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import ColumnElement, Select, Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.exc import StaleDataError

from registry import schemas
from registry.area import Area
from registry.db import SRID
from registry.errors import ConflictError, ImportRejected, NotFoundError, ValidationError
from registry.models import (
    BBOX_COLUMNS,
    BY_LAYER,
    LAYERS,
    Audit,
    Commune,
    Measurement,
    Named,
    Record,
    Sector,
    Seller,
    Site,
    Village,
    derived_columns,
    now_utc,
    search_key,
)

R = TypeVar("R", bound=Record)

BBox = tuple[float, float, float, float]
#: The area new records must lie in: an ``Area``; a lon/lat box, which stands for "the registry's
#: provinces" (``registry_area``) and is used itself only while no province is stored; or None
#: (no check: ``allow_outside_area``).
AreaArg = Area | BBox | None
#: Row key of values a reader supplies only for new records (e.g. OpenCelliD's defaults).
CREATE_DEFAULTS = "_create_defaults"
#: Row key of the row's line in its file, for the import report (else its position).
SOURCE_ROW = "_source_row"


def references(model: type[Record]) -> dict[str, type[Record]]:
    """The model's reference columns and the layer each one points to."""
    by_table = {m.__tablename__: m for m in LAYERS}
    return {
        c.name: by_table[next(iter(c.foreign_keys)).column.table.name]
        for c in model.__table__.columns
        if c.foreign_keys
    }


# ---------------------------------------------------------------- reading
def _bbox_clause(session: Session, model: type[Any], bbox: BBox) -> ColumnElement[bool]:
    """Extent overlaps ``bbox``: the bounding-box columns, led on PostGIS by ``geom &&
    envelope`` so the GiST index finds the candidates (the columns keep the exact, backend-
    independent answer: the index's boxes are float4, rounded outwards)."""
    x0, y0, x1, y1 = bbox
    exact = (
        (model.max_lon >= x0)
        & (model.min_lon <= x1)
        & (model.max_lat >= y0)
        & (model.min_lat <= y1)
    )
    if session.get_bind().dialect.name != "postgresql":
        return exact
    envelope = func.ST_MakeEnvelope(x0, y0, x1, y1, SRID)
    return model.geom.op("&&", is_comparison=True)(envelope) & exact


def _filters(
    session: Session, model: type[Record], *, bbox: BBox | None, commune: str | None, q: str | None
) -> tuple[list[ColumnElement[bool]], Any]:
    """SQL conditions, plus a commune polygon to test in process for layers without a link
    (on SQLite; PostGIS tests the polygon itself)."""
    where: list[ColumnElement[bool]] = []
    polygon = None
    if q:
        escaped = search_key(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        key = f"%{escaped}%"
        target = model.name_key if issubclass(model, Named) else func.lower(model.code)
        where.append(target.like(key, escape="\\"))
    if bbox is not None:
        if model is Sector:
            where.append(
                Sector.site_code.in_(select(Site.code).where(_bbox_clause(session, Site, bbox)))
            )
        else:
            where.append(_bbox_clause(session, model, bbox))
    if commune is not None:
        area = get_record(session, Commune, commune)  # unknown: a 404 for every layer
        if model is Commune:
            where.append(Commune.code == commune)
        elif "commune_code" in model.__table__.c:
            where.append(model.__table__.c.commune_code == commune)
        elif model is Seller:
            where.append(
                Seller.village_code.in_(select(Village.code).where(Village.commune_code == commune))
            )
        elif model is Sector:
            where.append(
                Sector.site_code.in_(select(Site.code).where(Site.commune_code == commune))
            )
        elif session.get_bind().dialect.name == "postgresql":
            where.append(
                func.ST_Intersects(
                    model.__table__.c.geom,
                    select(Commune.geom).where(Commune.code == commune).scalar_subquery(),
                )
            )
        else:
            polygon = area.geom
            where.append(_bbox_clause(session, model, polygon.bounds))
    return where, polygon


def _take(session: Session, stmt: Select[Any], polygon: Any, n: int | None = None) -> list[Record]:
    """The first ``n`` records of ``stmt`` (all when None) that intersect ``polygon`` if any."""
    if polygon is None:
        return list(session.scalars(stmt if n is None else stmt.limit(n)))
    return list(islice((r for r in session.scalars(stmt) if r.geom.intersects(polygon)), n))


def list_records(
    session: Session,
    model: type[Record],
    *,
    bbox: BBox | None = None,
    commune: str | None = None,
    q: str | None = None,
) -> list[Record]:
    """Every record matching every given filter, ordered by code.

    ``q`` matches names ignoring case and diacritics ("binh lu" finds "Bình Lư"); ``bbox`` is
    (min lon, min lat, max lon, max lat) and keeps records whose extent overlaps it; ``commune``
    keeps records in that commune (by reference, or by geometry for layers without one).
    """
    where, polygon = _filters(session, model, bbox=bbox, commune=commune, q=q)
    return _take(session, select(model).where(*where).order_by(model.code), polygon)


#: Most records a list counts exactly; past it ``Page.number_matched`` is None (counting a
#: national layer, e.g. a million sellers, on every page would cost more than the page).
COUNT_LIMIT = 10_000


@dataclass
class Page:
    """One page of a list in code order, and the codes that address its neighbours."""

    records: list[Record]
    #: How many records match in all; None when more than ``COUNT_LIMIT`` do.
    number_matched: int | None
    #: ``after`` for the next page; None on the last page.
    next_after: str | None
    #: ``before`` for the previous page; None on the first page.
    prev_before: str | None


def list_page(
    session: Session,
    model: type[Record],
    *,
    limit: int,
    after: str | None = None,
    before: str | None = None,
    bbox: BBox | None = None,
    commune: str | None = None,
    q: str | None = None,
) -> Page:
    """The ``limit`` records that follow code ``after`` (or precede ``before``) among those
    matching the filters of ``list_records``.

    Keyset (seek) pagination: a page starts from its boundary code, so page 100 costs what
    page 1 costs (OFFSET would read and skip every earlier row), and a record written between
    two requests shifts no other record to another page. The capped count decides the plan:
    when at most ``COUNT_LIMIT`` records match, they are selected first (on PostgreSQL in a
    subquery the planner may not merge, so a bbox filter always leads with the GiST index) and
    then sorted;
    when more match, walking the code index finds a page's records after a few thousand rows.
    (Left to itself, PostgreSQL walked the code index for about one 50 km window in five, at
    100 ms instead of 3 ms.)
    """
    if after is not None and before is not None:
        raise ValidationError(
            "give after or before, not both",
            details=[{"field": "before", "reason": "cannot be combined with after"}],
        )
    where, polygon = _filters(session, model, bbox=bbox, commune=commune, q=q)
    if polygon is not None:
        counted = len(_take(session, select(model).where(*where), polygon, COUNT_LIMIT + 1))
    else:
        counted = (
            session.scalar(
                select(func.count()).select_from(
                    select(model.id).where(*where).limit(COUNT_LIMIT + 1).subquery()
                )
            )
            or 0
        )
    selective = counted <= COUNT_LIMIT
    # The fenced subquery steers PostgreSQL's planner; SQLite plans well without it (and
    # building the aliased entity costs about 1 ms of Python per page).
    fenced = selective and session.get_bind().dialect.name == "postgresql"
    entity = aliased(model, select(model).where(*where).offset(0).subquery()) if fenced else model
    matching = select(entity) if fenced else select(model).where(*where)
    code = entity.code
    if before is None:
        stmt = matching.order_by(code)
        rows = _take(
            session, stmt if after is None else stmt.where(code > after), polygon, limit + 1
        )
        records, has_next = rows[:limit], len(rows) > limit
        has_prev = after is not None and bool(
            _take(session, matching.where(code <= after).order_by(code.desc()), polygon, 1)
        )
    else:
        rows = _take(
            session, matching.where(code < before).order_by(code.desc()), polygon, limit + 1
        )
        records, has_prev = rows[:limit][::-1], len(rows) > limit
        has_next = bool(_take(session, matching.where(code >= before).order_by(code), polygon, 1))
    return Page(
        records=records,
        number_matched=counted if selective else None,
        next_after=records[-1].code if has_next and records else None,
        prev_before=records[0].code if has_prev and records else None,
    )


def get_record(session: Session, model: type[R], code: str) -> R:
    record = session.scalar(select(model).where(model.code == code))
    if record is None:
        raise NotFoundError(f"no {model.layer} record with code {code!r}")
    return record


#: Codes per ``IN (...)`` query when looking records up by code.
CODES_PER_QUERY = 500


def _by_codes(
    session: Session, stmt: Select[Any], model: type[Record], codes: Iterable[str]
) -> Iterator[Any]:
    unique = list(dict.fromkeys(codes))
    for start in range(0, len(unique), CODES_PER_QUERY):
        yield from session.scalars(
            stmt.where(model.code.in_(unique[start : start + CODES_PER_QUERY]))
        )


def find_by_codes(session: Session, model: type[Record], codes: Iterable[str]) -> dict[str, Record]:
    return {r.code: r for r in _by_codes(session, select(model), model, codes)}


def existing_codes(session: Session, model: type[Record], codes: Iterable[str]) -> set[str]:
    """The given codes that are stored (without loading the records)."""
    return set(_by_codes(session, select(model.code), model, codes))


# ---------------------------------------------------------------- writing
def _missing_references(
    session: Session,
    model: type[Record],
    rows: Sequence[Mapping[str, Any]],
    pending: Mapping[str, set[str]],
) -> list[tuple[int, str, str]]:
    """(row index, field, code) for each reference that points nowhere."""
    problems = []
    for name, target in references(model).items():
        wanted = {row[name] for row in rows if row.get(name) is not None}
        known = existing_codes(session, target, wanted) | pending.get(target.layer, set())
        problems += [
            (i, name, row[name])
            for i, row in enumerate(rows)
            if row.get(name) is not None and row[name] not in known
        ]
    return problems


def _check_references(session: Session, model: type[Record], clean: Mapping[str, Any]) -> None:
    missing = _missing_references(session, model, [clean], {})
    if missing:
        raise ValidationError(
            f"invalid {model.layer} record",
            details=[
                {"field": f, "reason": f"refers to {c!r}, which does not exist"}
                for _, f, c in missing
            ],
        )


def _audit(
    session: Session,
    model: type[Record],
    code: str,
    action: str,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.add(
        Audit(actor=actor, action=action, entity=model.layer, key=code, before=before, after=after)
    )


def _apply(record: Record, clean: Mapping[str, Any]) -> bool:
    """Set changed fields; True when anything changed."""
    changed = False
    for name, value in clean.items():
        current = getattr(record, name)
        same = current.equals(value) if name == "geom" else current == value
        if not same:
            setattr(record, name, value)
            changed = True
    return changed


def _conflict(model: type[Record], code: str, cause: BaseException | None) -> ConflictError:
    return ConflictError(
        f"{model.layer} {code!r} conflicts with stored records "
        f"(duplicate code or still referenced): {cause}"
    )


def _flush(session: Session, model: type[Record], code: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        raise _conflict(model, code, exc.orig) from None
    except StaleDataError:
        # The session's transaction is gone; read what won the race in a fresh one.
        with Session(session.get_bind()) as fresh:
            current = fresh.scalar(select(model).where(model.code == code))
            feature = schemas.to_feature(current) if current else None
        raise ConflictError(
            f"{model.layer} {code!r} was changed by someone else", current=feature
        ) from None


_AREAS: dict[str, tuple[tuple[Any, ...], Area]] = {}


def province_boundaries(session: Session, province: str | None = None) -> Iterator[tuple[str, Any]]:
    """(province, commune polygon) of every stored commune, or of one province's."""
    stmt = select(Commune.province, Commune.geom)
    if province is not None:
        stmt = stmt.where(Commune.province == province)
    for province, geom in session.execute(stmt):
        yield province, geom


def provinces(session: Session) -> list[str]:
    """Names of the provinces in the registry, sorted."""
    return list(session.scalars(select(Commune.province).distinct().order_by(Commune.province)))


def registry_area(session: Session, fallback: BBox | None) -> Area | None:
    """The union of the provinces' boundaries, or ``fallback`` while no commune is stored.

    The union is kept per database until a commune changes (count, versions and last update
    are its fingerprint), so a 10,000-row import or a busy API does not rebuild it per row.
    """
    fingerprint = tuple(
        session.execute(
            select(func.count(), func.sum(Commune.version), func.max(Commune.updated_at))
        ).one()
    )
    if not fingerprint[0]:
        return None if fallback is None else Area.from_bbox(fallback)
    bind = session.get_bind()
    key = str(bind.engine.url)
    cached = _AREAS.get(key)
    if cached is None or cached[0] != fingerprint:
        cached = _AREAS[key] = (fingerprint, Area.union(province_boundaries(session)))
    return cached[1]


def _area(session: Session, area_bbox: AreaArg) -> Area | None:
    return registry_area(session, area_bbox) if isinstance(area_bbox, tuple) else area_bbox


def exists(session: Session, model: type[Record], code: str) -> bool:
    return session.scalar(select(model.id).where(model.code == code)) is not None


def create_record(
    session: Session,
    model: type[Record],
    data: Mapping[str, Any],
    *,
    actor: str,
    area_bbox: AreaArg,
    action: str = "create",
) -> Record:
    clean = schemas.validate(model, dict(data), area_bbox=_area(session, area_bbox))
    _check_references(session, model, clean)
    if exists(session, model, clean["code"]):
        raise ConflictError(
            f"{model.layer} {clean['code']!r} already exists",
            current=schemas.to_feature(get_record(session, model, clean["code"])),
        )
    record = model(**clean)
    session.add(record)
    _flush(session, model, record.code)
    _audit(session, model, record.code, action, actor, None, schemas.to_feature(record))
    return record


def update_record(
    session: Session,
    model: type[Record],
    code: str,
    data: Mapping[str, Any],
    *,
    expected_version: int | None,
    actor: str,
    area_bbox: AreaArg,
    action: str = "update",
) -> Record:
    """Change some fields; ``expected_version`` (required by the API) guards lost updates."""
    record = get_record(session, model, code)
    if expected_version is not None and expected_version != record.version:
        raise ConflictError(
            f"{model.layer} {code!r} is at version {record.version}, "
            f"not {expected_version}: reload and retry",
            current=schemas.to_feature(record),
        )
    if data.get("code", code) != code:
        raise ValidationError(
            "codes cannot be changed",
            details=[{"field": "code", "reason": "is the record's key and cannot be changed"}],
        )
    merged = {**schemas.to_properties(record), "geometry": getattr(record, "geom", None), **data}
    # A stored geometry outside the area (kept on purpose) does not block other edits.
    area = _area(session, area_bbox) if "geometry" in data else None
    clean = schemas.validate(model, merged, area_bbox=area)
    _check_references(session, model, clean)
    before = schemas.to_feature(record)
    if _apply(record, clean):
        _flush(session, model, code)
        _audit(session, model, code, action, actor, before, schemas.to_feature(record))
    return record


def delete_record(
    session: Session, model: type[Record], code: str, *, expected_version: int | None, actor: str
) -> None:
    record = get_record(session, model, code)
    if expected_version is not None and expected_version != record.version:
        raise ConflictError(
            f"{model.layer} {code!r} is at version {record.version}, not {expected_version}",
            current=schemas.to_feature(record),
        )
    before = schemas.to_feature(record)
    cascaded = (
        list(session.scalars(select(Sector).where(Sector.site_code == code)))
        if model is Site
        else []
    )
    for sector in cascaded:
        _audit(session, Sector, sector.code, "delete", actor, schemas.to_feature(sector), None)
    session.delete(record)
    _flush(session, model, code)
    _audit(session, model, code, "delete", actor, before, None)


# ---------------------------------------------------------------- history


def history(session: Session, model: type[Record], code: str) -> list[Audit]:
    """Every recorded write of one record, oldest first (deleted records keep theirs)."""
    return list(
        session.scalars(
            select(Audit).where(Audit.entity == model.layer, Audit.key == code).order_by(Audit.id)
        )
    )


def restore_record(
    session: Session,
    model: type[Record],
    code: str,
    audit_id: object,
    *,
    expected_version: int | None,
    actor: str,
) -> Record:
    """Bring a record back to its state after history entry ``audit_id`` (for a deletion: the
    state it was deleted in), as a new write audited as ``restore``; a deleted record is created
    again. References are checked as for any write; the area check is not (it was stored)."""
    if (
        isinstance(audit_id, bool)
        or not isinstance(audit_id, int)
        or not 1 <= audit_id <= schemas.INT32_MAX
    ):
        raise ValidationError(
            "say which history entry to restore",
            details=[
                {"field": "audit_id", "reason": f"must be an integer from 1 to {schemas.INT32_MAX}"}
            ],
        )
    entry = session.get(Audit, audit_id)
    if entry is None or entry.entity != model.layer or entry.key != code:
        raise NotFoundError(f"no history entry {audit_id} for {model.layer} {code!r}")
    snapshot = entry.after or entry.before or {}
    data = {k: v for k, v in snapshot.get("properties", {}).items() if k not in schemas.READ_ONLY}
    if model.geometry_type is not None:
        data["geometry"] = snapshot.get("geometry")
    if not exists(session, model, code):
        return create_record(session, model, data, actor=actor, area_bbox=None, action="restore")
    return update_record(
        session,
        model,
        code,
        data,
        expected_version=expected_version,
        actor=actor,
        area_bbox=None,
        action="restore",
    )


# ---------------------------------------------------------------- importing
@dataclass
class ImportReport:
    """Counts per layer of an accepted import."""

    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


def _stale_row(stored: Record | None, version: Any) -> str | None:
    """Why a row exported at ``version`` may not overwrite ``stored``, if it may not."""
    if stored is None or version in (None, ""):
        return None
    if str(version).strip() != str(stored.version):
        return (
            f"the file has version {version} of {stored.code!r} but the registry has "
            f"version {stored.version}: export again and redo the edit"
        )
    return None


#: Smallest number of new records of one layer that an import on PostgreSQL writes with COPY.
BULK_MIN_ROWS = 1000


def z_order(lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Z-order (Morton) keys of points, 16 bits per axis (≈ 600 m): near points, near keys.

    >>> z_order(np.array([0.0, 0.001, 90.0]), np.array([0.0, 0.001, 45.0])).tolist()
    [1073741823, 1073741823, 3489660927]
    """

    def spread(v: np.ndarray) -> np.ndarray:  # bits b15…b0 → b15 0 b14 0 … 0 b0
        for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
            v = (v | (v << shift)) & mask
        return v

    x = ((np.asarray(lon_deg) + 180.0) / 360.0 * 65535).astype(np.uint64)
    y = ((np.asarray(lat_deg) + 90.0) / 180.0 * 65535).astype(np.uint64)
    return spread(x) | (spread(y) << np.uint64(1))


def _copy_new_records(
    session: Session, model: type[Record], rows: Sequence[dict[str, Any]], *, actor: str
) -> None:
    """Insert validated new records, and their audit entries, with PostgreSQL COPY.

    The rows go straight into the layer's table, in the import's transaction: their codes were
    just found new and their references present, so a staging table plus ``INSERT … ON
    CONFLICT`` would write everything twice only to hide a record of the same code inserted
    meanwhile, which must fail the import (as the row path's flush does). The audit entries are
    those of the row path: one ``create`` per record with its whole Feature as ``after``.
    Spatial records are written in Z-order of their box centres, so that the records of one
    map window share few table pages (a 50 km window of a national layer otherwise reads one
    page per record). Afterwards the table is analysed, so that the next queries are planned
    for its new size.
    """
    import psycopg  # only PostgreSQL imports come here

    session.flush()  # this import's ORM writes so far go first
    stamp = now_utc()
    dialect = session.get_bind().dialect
    table: Table = model.__table__  # type: ignore[assignment]  # a declarative model's is one
    audit: Table = Audit.__table__  # type: ignore[assignment]
    columns = [c for c in table.columns if c.name != "id"]
    convert: list[Callable[[Any], Any]] = [
        c.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v) for c in columns
    ]
    to_json = audit.c.after.type.dialect_impl(dialect).bind_processor(dialect)
    assert to_json is not None  # JSON columns always convert
    records = [
        {
            **row,
            **derived_columns(model, row),
            "version": 1,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for row in rows
    ]
    if model.geometry_type is not None:
        box = np.array([[r[name] for name in BBOX_COLUMNS] for r in records]).reshape(-1, 4)
        order = np.argsort(
            z_order((box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2), kind="stable"
        )
        records = [records[i] for i in order]
    entries = []
    cursor = session.connection().connection.cursor()
    try:
        with cursor.copy(
            f"COPY {table.name} ({', '.join(c.name for c in columns)}) FROM STDIN"
        ) as copy:
            for values in records:
                copy.write_row([f(values[c.name]) for f, c in zip(convert, columns, strict=True)])
                entries.append(
                    (
                        stamp,
                        actor,
                        "create",
                        model.layer,
                        values["code"],
                        to_json(None),
                        to_json(schemas.feature(model, values.get)),
                    )
                )
        with cursor.copy(
            "COPY audit_log (at, actor, action, entity, key, before, after) FROM STDIN"
        ) as copy:
            for entry in entries:
                copy.write_row(entry)
        cursor.execute(f"ANALYZE {table.name}")
    except psycopg.errors.IntegrityError as exc:
        raise _conflict(model, f"(bulk import of {len(rows)} rows)", exc) from None
    finally:
        cursor.close()


def match_cells(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Measurement rows with the sector (and site) whose ``cell_identity`` (ECI/NCI) and
    technology are the row's, where the row names no sector."""

    def cell(row: Mapping[str, Any]) -> int | None:  # raw values (CSV text); validated later
        try:
            return int(str(row.get("cell_identity")).strip())
        except ValueError:
            return None

    wanted = {c for c in map(cell, rows) if c is not None}
    if not wanted:
        return list(rows)
    sectors: dict[tuple[int | None, str], Sector] = {
        (s.cell_identity, s.technology): s
        for s in session.scalars(select(Sector).where(Sector.cell_identity.in_(wanted)))
        if s.cell_identity is not None
    }
    out: list[Mapping[str, Any]] = []
    for row in rows:
        sector = sectors.get((cell(row), row.get("technology") or "4G"))
        if sector is not None and not row.get("sector_code"):
            row = {**row, "sector_code": sector.code, "site_code": sector.site_code}
        out.append(row)
    return out


def import_layers(
    session: Session,
    layers: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    actor: str,
    area_bbox: AreaArg,
    progress: Any = None,
    bulk_min_rows: int = BULK_MIN_ROWS,
) -> ImportReport:
    """Upsert rows by code into several layers at once, all or nothing.

    Every row of every layer is validated first; if any is wrong, ImportRejected lists each
    problem with its layer, row number (1-based) and field, and nothing is written. Rows equal
    to the stored record change nothing, so re-importing the same file is a no-op. A row only
    changes the fields it carries; one carrying a ``version`` other than the stored one is
    refused (it was exported before someone else's edit). Values under ``CREATE_DEFAULTS`` in a
    row are used only when the record is new.

    On PostgreSQL, a layer with at least ``bulk_min_rows`` new records has them written by COPY
    (see ``_copy_new_records``): the same records and audit entries, several times faster.
    """
    unknown = [name for name in layers if name not in BY_LAYER]
    if unknown:
        raise ValidationError(
            "unknown layers",
            details=[
                {"field": "layer", "reason": f"{n!r} is not a layer; known: {', '.join(BY_LAYER)}"}
                for n in unknown
            ],
        )
    area = _area(session, area_bbox)
    report = ImportReport()
    errors: list[dict[str, Any]] = []
    cleaned: dict[str, list[dict[str, Any]]] = {}
    existing_by_layer: dict[str, dict[str, Record]] = {}
    pending: dict[str, set[str]] = {}
    for model in LAYERS:
        rows = layers.get(model.layer)
        if rows is None:
            continue
        existing = existing_by_layer[model.layer] = find_by_codes(
            session, model, (str(r.get("code")) for r in rows)
        )
        good: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        if model is Measurement:
            rows = match_cells(session, rows)
        for i, raw in enumerate(rows, start=1):
            row = dict(raw)
            defaults = row.pop(CREATE_DEFAULTS, {})
            i = row.pop(SOURCE_ROW, i)
            stored = existing.get(str(row.get("code")))
            problem = _stale_row(stored, row.get("version"))
            if problem:
                errors.append(
                    {"layer": model.layer, "row": i, "field": "version", "reason": problem}
                )
                continue
            # Fields missing from the file keep their stored values (or defaults when new).
            merged = (
                {**schemas.to_properties(stored), "geometry": getattr(stored, "geom", None), **row}
                if stored
                else {**defaults, **row}
            )
            try:
                clean = schemas.validate(model, merged, area_bbox=area)
            except ValidationError as exc:
                errors += [{"layer": model.layer, "row": i, **d} for d in exc.details]
                continue
            if clean["code"] in seen:
                errors.append(
                    {
                        "layer": model.layer,
                        "row": i,
                        "field": "code",
                        "reason": f"repeats row {seen[clean['code']]}",
                    }
                )
                continue
            seen[clean["code"]] = i
            clean["_row"] = i
            good.append(clean)
        errors += [
            {
                "layer": model.layer,
                "row": good[i]["_row"],
                "field": f,
                "reason": f"refers to {c!r}, which does not exist",
            }
            for i, f, c in _missing_references(session, model, good, pending)
        ]
        pending[model.layer] = set(seen)
        cleaned[model.layer] = good
    if errors:
        raise ImportRejected(
            f"import rejected: {len(errors)} problem(s); nothing was stored", details=errors
        )
    bulk = session.get_bind().dialect.name == "postgresql"
    for layer, stored_rows in cleaned.items():
        model = BY_LAYER[layer]
        existing = existing_by_layer[layer]
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        touched: list[tuple[str, Record, dict[str, Any] | None]] = []
        for row in stored_rows:
            row.pop("_row")
        new = [row for row in stored_rows if row["code"] not in existing]
        if bulk and len(new) >= bulk_min_rows:
            _copy_new_records(session, model, new, actor=actor)
            counts["created"] = len(new)
            if progress is not None:
                progress(len(new))
            stored_rows = [row for row in stored_rows if row["code"] in existing]
        for row in stored_rows:
            record = existing.get(row["code"])
            if record is None:
                record = model(**row)
                session.add(record)
                touched.append(("create", record, None))
            else:
                before = schemas.to_feature(record)
                if _apply(record, row):
                    touched.append(("update", record, before))
                else:
                    counts["unchanged"] += 1
            if progress is not None:
                progress(1)
        _flush(session, model, f"(import of {len(stored_rows)} stored_rows)")
        for action, record, previous in touched:
            counts[action + "d"] += 1
            _audit(session, model, record.code, action, actor, previous, schemas.to_feature(record))
        for key, n in counts.items():
            getattr(report, key)[layer] = getattr(report, key).get(layer, 0) + n
    return report
