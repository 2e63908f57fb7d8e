"""Reading and writing registry records: the one path every view, command and importer uses.

Writes check references, enforce optimistic locking and append to the audit log; a failed write
leaves nothing behind (callers run each request or import in one transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from registry import schemas
from registry.errors import ConflictError, ImportRejected, NotFoundError, ValidationError
from registry.models import (
    BY_LAYER,
    LAYERS,
    Audit,
    Commune,
    Named,
    Record,
    Sector,
    Seller,
    Site,
    Village,
    search_key,
)

BBox = tuple[float, float, float, float]
#: Row key of values a reader supplies only for new records (e.g. OpenCelliD's defaults).
CREATE_DEFAULTS = "_create_defaults"


def references(model: type[Record]) -> dict[str, type[Record]]:
    """The model's reference columns and the layer each one points to."""
    by_table = {m.__tablename__: m for m in LAYERS}
    return {c.name: by_table[next(iter(c.foreign_keys)).column.table.name]
            for c in model.__table__.columns if c.foreign_keys}


# ---------------------------------------------------------------- reading
def _bbox_clause(model: type[Any], bbox: BBox) -> ColumnElement[bool]:
    x0, y0, x1, y1 = bbox
    return (model.max_lon >= x0) & (model.min_lon <= x1) & (model.max_lat >= y0) & (
        model.min_lat <= y1)


def _filters(session: Session, model: type[Record], *, bbox: BBox | None, commune: str | None,
             q: str | None) -> tuple[list[ColumnElement[bool]], Any]:
    """SQL conditions, plus a commune polygon to test in process for layers without a link."""
    where: list[ColumnElement[bool]] = []
    polygon = None
    if q:
        escaped = search_key(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        key = f"%{escaped}%"
        target = model.name_key if issubclass(model, Named) else func.lower(model.code)
        where.append(target.like(key, escape="\\"))
    if bbox is not None:
        if model is Sector:
            where.append(Sector.site_code.in_(select(Site.code).where(_bbox_clause(Site, bbox))))
        else:
            where.append(_bbox_clause(model, bbox))
    if commune is not None:
        get_record(session, Commune, commune)  # an unknown commune is a 404 for every layer
        if model is Commune:
            where.append(Commune.code == commune)
        elif "commune_code" in model.__table__.c:
            where.append(model.commune_code == commune)
        elif model is Seller:
            where.append(Seller.village_code.in_(
                select(Village.code).where(Village.commune_code == commune)))
        elif model is Sector:
            where.append(Sector.site_code.in_(
                select(Site.code).where(Site.commune_code == commune)))
        else:
            polygon = get_record(session, Commune, commune).geom
            where.append(_bbox_clause(model, polygon.bounds))
    return where, polygon


def list_records(session: Session, model: type[Record], *, bbox: BBox | None = None,
                 commune: str | None = None, q: str | None = None, limit: int | None = None,
                 offset: int = 0) -> tuple[list[Record], int]:
    """Records matching every given filter, ordered by code, and how many match in all.

    ``q`` matches names ignoring case and diacritics ("binh lu" finds "Bình Lư"); ``bbox`` is
    (min lon, min lat, max lon, max lat) and keeps records whose extent overlaps it; ``commune``
    keeps records in that commune (by reference, or by geometry for layers without one).
    """
    where, polygon = _filters(session, model, bbox=bbox, commune=commune, q=q)
    stmt = select(model).where(*where).order_by(model.code)
    if polygon is None:
        total = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
        page = stmt.offset(offset)
        return list(session.scalars(page if limit is None else page.limit(limit))), total
    matches = [r for r in session.scalars(stmt) if r.geom.intersects(polygon)]
    end = None if limit is None else offset + limit
    return matches[offset:end], len(matches)


def get_record(session: Session, model: type[Record], code: str) -> Record:
    record = session.scalar(select(model).where(model.code == code))
    if record is None:
        raise NotFoundError(f"no {model.layer} record with code {code!r}")
    return record


def find_by_codes(session: Session, model: type[Record], codes: Iterable[str]) -> dict[str, Record]:
    codes = list(dict.fromkeys(codes))
    found: dict[str, Record] = {}
    for start in range(0, len(codes), 500):
        chunk = codes[start:start + 500]
        stmt = select(model).where(model.code.in_(chunk))
        found.update((r.code, r) for r in session.scalars(stmt))
    return found


# ---------------------------------------------------------------- writing
def _missing_references(session: Session, model: type[Record], rows: Sequence[Mapping[str, Any]],
                        pending: Mapping[str, set[str]]) -> list[tuple[int, str, str]]:
    """(row index, field, code) for each reference that points nowhere."""
    problems = []
    for name, target in references(model).items():
        wanted = {row[name] for row in rows if row.get(name) is not None}
        known = set(find_by_codes(session, target, wanted)) | pending.get(target.layer, set())
        problems += [(i, name, row[name]) for i, row in enumerate(rows)
                     if row.get(name) is not None and row[name] not in known]
    return problems


def _check_references(session: Session, model: type[Record], clean: Mapping[str, Any]) -> None:
    missing = _missing_references(session, model, [clean], {})
    if missing:
        raise ValidationError(f"invalid {model.layer} record", details=[
            {"field": f, "reason": f"refers to {c!r}, which does not exist"}
            for _, f, c in missing])


def _audit(session: Session, model: type[Record], code: str, action: str, actor: str,
           before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    session.add(Audit(actor=actor, action=action, entity=model.layer, key=code, before=before,
                      after=after))


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


def _flush(session: Session, model: type[Record], code: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"{model.layer} {code!r} conflicts with stored records "
                            f"(duplicate code or still referenced): {exc.orig}") from None
    except StaleDataError:
        # The session's transaction is gone; read what won the race in a fresh one.
        with Session(session.get_bind()) as fresh:
            current = fresh.scalar(select(model).where(model.code == code))
            feature = schemas.to_feature(current) if current else None
        raise ConflictError(f"{model.layer} {code!r} was changed by someone else",
                            current=feature) from None


def exists(session: Session, model: type[Record], code: str) -> bool:
    return session.scalar(select(model.id).where(model.code == code)) is not None


def create_record(session: Session, model: type[Record], data: Mapping[str, Any], *, actor: str,
                  area_bbox: BBox | None, action: str = "create") -> Record:
    clean = schemas.validate(model, dict(data), area_bbox=area_bbox)
    _check_references(session, model, clean)
    if exists(session, model, clean["code"]):
        raise ConflictError(f"{model.layer} {clean['code']!r} already exists",
                            current=schemas.to_feature(get_record(session, model, clean["code"])))
    record = model(**clean)
    session.add(record)
    _flush(session, model, record.code)
    _audit(session, model, record.code, action, actor, None, schemas.to_feature(record))
    return record


def update_record(session: Session, model: type[Record], code: str, data: Mapping[str, Any], *,
                  expected_version: int | None, actor: str, area_bbox: BBox | None,
                  action: str = "update") -> Record:
    """Change some fields; ``expected_version`` (required by the API) guards lost updates."""
    record = get_record(session, model, code)
    if expected_version is not None and expected_version != record.version:
        raise ConflictError(f"{model.layer} {code!r} is at version {record.version}, "
                            f"not {expected_version}: reload and retry",
                            current=schemas.to_feature(record))
    if data.get("code", code) != code:
        raise ValidationError("codes cannot be changed", details=[
            {"field": "code", "reason": "is the record's key and cannot be changed"}])
    merged = {**schemas.to_properties(record), "geometry": getattr(record, "geom", None),
              **data}
    # A stored geometry outside the area (kept on purpose) does not block other edits.
    clean = schemas.validate(model, merged, area_bbox=area_bbox if "geometry" in data else None)
    _check_references(session, model, clean)
    before = schemas.to_feature(record)
    if _apply(record, clean):
        _flush(session, model, code)
        _audit(session, model, code, action, actor, before, schemas.to_feature(record))
    return record


def delete_record(session: Session, model: type[Record], code: str, *,
                  expected_version: int | None, actor: str) -> None:
    record = get_record(session, model, code)
    if expected_version is not None and expected_version != record.version:
        raise ConflictError(f"{model.layer} {code!r} is at version {record.version}, "
                            f"not {expected_version}", current=schemas.to_feature(record))
    before = schemas.to_feature(record)
    cascaded = (list(session.scalars(select(Sector).where(Sector.site_code == code)))
                if model is Site else [])
    for sector in cascaded:
        _audit(session, Sector, sector.code, "delete", actor, schemas.to_feature(sector), None)
    session.delete(record)
    _flush(session, model, code)
    _audit(session, model, code, "delete", actor, before, None)


# ---------------------------------------------------------------- history

def history(session: Session, model: type[Record], code: str) -> list[Audit]:
    """Every recorded write of one record, oldest first (deleted records keep theirs)."""
    return list(session.scalars(select(Audit).where(
        Audit.entity == model.layer, Audit.key == code).order_by(Audit.id)))


def restore_record(session: Session, model: type[Record], code: str, audit_id: int, *,
                   expected_version: int | None, actor: str) -> Record:
    """Bring a record back to its state after history entry ``audit_id`` (for a deletion: the
    state it was deleted in), as a new write audited as ``restore``; a deleted record is created
    again. References are checked as for any write; the area check is not (it was stored)."""
    if (isinstance(audit_id, bool) or not isinstance(audit_id, int)
            or not 1 <= audit_id <= schemas.INT32_MAX):
        raise ValidationError("say which history entry to restore", details=[
            {"field": "audit_id", "reason": f"must be an integer from 1 to {schemas.INT32_MAX}"}])
    entry = session.get(Audit, audit_id)
    if entry is None or entry.entity != model.layer or entry.key != code:
        raise NotFoundError(f"no history entry {audit_id} for {model.layer} {code!r}")
    snapshot = entry.after or entry.before or {}
    data = {k: v for k, v in snapshot.get("properties", {}).items()
            if k not in schemas.READ_ONLY}
    if model.geometry_type is not None:
        data["geometry"] = snapshot.get("geometry")
    if not exists(session, model, code):
        return create_record(session, model, data, actor=actor, area_bbox=None, action="restore")
    return update_record(session, model, code, data, expected_version=expected_version,
                         actor=actor, area_bbox=None, action="restore")


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
        return (f"the file has version {version} of {stored.code!r} but the registry has "
                f"version {stored.version}: export again and redo the edit")
    return None


def import_layers(session: Session, layers: Mapping[str, Sequence[Mapping[str, Any]]], *,
                  actor: str, area_bbox: BBox | None, progress: Any = None) -> ImportReport:
    """Upsert rows by code into several layers at once, all or nothing.

    Every row of every layer is validated first; if any is wrong, ImportRejected lists each
    problem with its layer, row number (1-based) and field, and nothing is written. Rows equal
    to the stored record change nothing, so re-importing the same file is a no-op. A row only
    changes the fields it carries; one carrying a ``version`` other than the stored one is
    refused (it was exported before someone else's edit). Values under ``CREATE_DEFAULTS`` in a
    row are used only when the record is new.
    """
    unknown = [name for name in layers if name not in BY_LAYER]
    if unknown:
        raise ValidationError("unknown layers", details=[
            {"field": "layer", "reason": f"{n!r} is not a layer; known: {', '.join(BY_LAYER)}"}
            for n in unknown])
    report = ImportReport()
    errors: list[dict[str, Any]] = []
    cleaned: dict[str, list[dict[str, Any]]] = {}
    pending: dict[str, set[str]] = {}
    for model in LAYERS:
        rows = layers.get(model.layer)
        if rows is None:
            continue
        existing = find_by_codes(session, model, (str(r.get("code")) for r in rows))
        good: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for i, raw in enumerate(rows, start=1):
            row = dict(raw)
            defaults = row.pop(CREATE_DEFAULTS, {})
            stored = existing.get(str(row.get("code")))
            problem = _stale_row(stored, row.get("version"))
            if problem:
                errors.append({"layer": model.layer, "row": i, "field": "version",
                               "reason": problem})
                continue
            # Fields missing from the file keep their stored values (or defaults when new).
            merged = ({**schemas.to_properties(stored), "geometry": getattr(stored, "geom", None),
                       **row} if stored else {**defaults, **row})
            try:
                clean = schemas.validate(model, merged, area_bbox=area_bbox)
            except ValidationError as exc:
                errors += [{"layer": model.layer, "row": i, **d} for d in exc.details]
                continue
            if clean["code"] in seen:
                errors.append({"layer": model.layer, "row": i, "field": "code",
                               "reason": f"repeats row {seen[clean['code']]}"})
                continue
            seen[clean["code"]] = i
            clean["_row"] = i
            good.append(clean)
        errors += [{"layer": model.layer, "row": good[i]["_row"], "field": f,
                    "reason": f"refers to {c!r}, which does not exist"}
                   for i, f, c in _missing_references(session, model, good, pending)]
        pending[model.layer] = set(seen)
        cleaned[model.layer] = good
    if errors:
        raise ImportRejected(f"import rejected: {len(errors)} problem(s); nothing was stored",
                             details=errors)
    for layer, rows in cleaned.items():
        model = BY_LAYER[layer]
        existing = find_by_codes(session, model, (r["code"] for r in rows))
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        touched: list[tuple[str, Record, dict[str, Any] | None]] = []
        for row in rows:
            row.pop("_row")
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
        _flush(session, model, f"(import of {len(rows)} rows)")
        for action, record, before in touched:
            counts[action + "d"] += 1
            _audit(session, model, record.code, action, actor, before, schemas.to_feature(record))
        for key, n in counts.items():
            getattr(report, key)[layer] = getattr(report, key).get(layer, 0) + n
    return report
