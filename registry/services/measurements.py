"""Field measurement use cases: record one from the phone page, pair the stored measurements
with the prediction, calibrate (k-fold cross-validated; applied only where it lowers the
held-out error), revert, compare measured with predicted, and a verdict's ``measured`` block.

A calibration corrects what the verdict reads from the coverage grids: RSRP by a global and a
per-site offset, the uplink rate by a factor per technology (`registry.radio.calibration`).
It is fitted on the raw prediction of the current coverage version and stored with its
inputs, parameters and held-out errors in ``calibrations``; the newest ``applied`` one is in
force, and reverting it puts the one before back in force.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import store
from registry.errors import NotFoundError, ValidationError
from registry.io.measurements import DEVICE_TIME_ZONE, parse_share_text
from registry.models import Calibration, Commune, Measurement, Seller, now_utc
from registry.radio.calibration import Correction, Samples, cross_validate
from registry.radio.coverage import NO_SERVER
from registry.radio.linkbudget import SERVICE_CLASSES, ServiceClassThresholds, service_class_codes
from registry.readiness import TechGrid, reason
from registry.services import queries
from registry.services.coverage import CoverageVersion, current

Config = Mapping[str, Any]
#: Folds of the cross-validation.
CV_FOLDS = 5
#: Side of the spatial blocks whose measurements stay in one fold (m): shadowing decorrelates
#: over 37-120 m in rural and urban macro cells (TR 38.901 Table 7.5-6), so neighbours within
#: a block share theirs and would flatter a split.
CV_BLOCK_M = 500.0
#: A measurement this recent (days) at a seller's place is used in the seller's verdict.
RECENT_DAYS = 90
#: Measurements within this distance (m) of a seller count as taken at the seller's place.
SELLER_RADIUS_M = 50.0
#: Metres per degree of latitude (WGS 84 mean), for block keys and distances at this scale.
M_PER_DEG = 111_320.0


def _metres(lon: float, lat: float) -> tuple[float, float]:
    """Local equirectangular metres (enough for 500 m blocks and 50 m radii)."""
    return lon * M_PER_DEG * math.cos(math.radians(lat)), lat * M_PER_DEG


# ---------------------------------------------------------------- recording
def record_measurement(
    config: Config,
    session: Session,
    *,
    actor: str,
    lon: float,
    lat: float,
    seller_code: str | None,
    ul_rate_mbps: float | None = None,
    dl_rate_mbps: float | None = None,
    technology: str | None = None,
    share_text: str | None = None,
    measured_at: datetime | None = None,
) -> Measurement:
    """Store one upload result taken on the phone page (typed, or parsed from the Speedtest
    app's share text, which wins for what it carries)."""
    values: dict[str, Any] = {"ul_rate_mbps": ul_rate_mbps, "dl_rate_mbps": dl_rate_mbps}
    if share_text and share_text.strip():
        parsed = parse_share_text(share_text)
        values.update({k: v for k, v in parsed.items() if v is not None})
    if values["ul_rate_mbps"] is None:
        raise ValidationError(
            "no upload rate",
            details=[{"field": "ul_rate_mbps", "reason": "type it or paste the share text"}],
        )
    stamp = (measured_at or now_utc()).astimezone(UTC)
    data = {
        "code": f"phone-{stamp:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "kind": "speedtest",
        "source": "phone",
        "measured_at": stamp,
        "technology": values.get("technology") or technology,
        "seller_code": seller_code or None,
        "ul_rate_mbps": values["ul_rate_mbps"],
        "dl_rate_mbps": values["dl_rate_mbps"],
    }
    record = store.create_record(
        session, Measurement, data, actor=actor, area_bbox=config["AREA_BBOX"]
    )
    return record  # type: ignore[return-value]


# ---------------------------------------------------------------- pairing
@dataclass(frozen=True)
class Pair:
    """One measurement and the raw prediction at its place (for its technology)."""

    measurement: Measurement
    technology: str
    site_code: str
    commune_code: str
    predicted_rsrp_dbm: float | None
    predicted_ul_mbps: float | None


def _commune_of(points: Sequence[tuple[float, float]], communes: Sequence[Commune]) -> list[str]:
    if not communes:
        return [""] * len(points)
    shapes = [c.geom for c in communes]
    tree = shapely.STRtree(shapes)
    out = []
    for lon, lat in points:
        hits = tree.query(shapely.Point(lon, lat), predicate="within")
        out.append(communes[int(hits[0])].code if len(hits) else "")
    return out


def pairs(version: CoverageVersion, session: Session) -> tuple[list[Pair], int]:
    """Every stored measurement with RSRP or an uplink rate, paired with the prediction where
    it has a serving cell; and how many could not be paired."""
    stored = [
        m
        for m in session.scalars(select(Measurement).order_by(Measurement.code))
        if m.rsrp_dbm is not None or m.ul_rate_mbps is not None
    ]
    points = [(m.geom.x, m.geom.y) for m in stored]
    predicted = version.values_at(points) if points else []
    communes = _commune_of(points, queries.communes(session))
    out = []
    for m, p, commune in zip(stored, predicted, communes, strict=True):
        tech = m.technology or "4G"
        cell = p.get(tech) or {}
        if cell.get("site_code") is None:
            continue
        out.append(
            Pair(
                m,
                tech,
                m.site_code or cell["site_code"],
                commune,
                cell.get("rsrp_dbm"),
                cell.get("ul_rate_mbps"),
            )
        )
    return out, len(stored) - len(out)


def samples(found: Sequence[Pair]) -> Samples:
    def block(m: Measurement) -> str:
        x, y = _metres(m.geom.x, m.geom.y)
        return f"{math.floor(x / CV_BLOCK_M)}:{math.floor(y / CV_BLOCK_M)}"

    return Samples.of(
        predicted_rsrp_dbm=[p.predicted_rsrp_dbm for p in found],
        measured_rsrp_dbm=[p.measurement.rsrp_dbm for p in found],
        predicted_ul_mbps=[p.predicted_ul_mbps for p in found],
        measured_ul_mbps=[p.measurement.ul_rate_mbps for p in found],
        site=[p.site_code for p in found],
        technology=[p.technology for p in found],
        commune=[p.commune_code for p in found],
        group=[block(p.measurement) for p in found],
    )


# ---------------------------------------------------------------- calibrations
def _as_dict(c: Calibration) -> dict[str, Any]:
    return {
        "id": c.id,
        "created_at": c.created_at.isoformat(),
        "actor": c.actor,
        "status": c.status,
        "inputs": c.inputs,
        "parameters": c.parameters,
        "errors": c.errors,
        "reverted_at": c.reverted_at.isoformat() if c.reverted_at else None,
    }


def in_force(session: Session) -> Calibration | None:
    """The calibration in force: the newest applied one."""
    return session.scalars(
        select(Calibration)
        .where(Calibration.status == "applied")
        .order_by(Calibration.id.desc())
        .limit(1)
    ).first()


def correction_in_force(session: Session) -> tuple[int | None, Correction]:
    """The id and correction of the calibration in force (none: no correction)."""
    found = in_force(session)
    if found is None:
        return None, Correction()
    return found.id, Correction.from_dict(found.parameters["applied"])


def calibrate(config: Config, session: Session, *, actor: str, k: int = CV_FOLDS) -> dict[str, Any]:
    """Fit a calibration on every paired measurement, judge it by k-fold cross-validation and
    store it: ``applied`` (in force) when it lowers the held-out RMSE of RSRP or of the uplink
    rate (only the parts that do are applied), else ``refused``."""
    version = current(config)
    found, unpaired = pairs(version, session)
    if not found:
        raise ValidationError(
            "no measurement to calibrate with",
            details=[
                {
                    "field": "measurements",
                    "reason": "import measurements with RSRP or an upload rate, taken where "
                    "the prediction has a serving cell",
                }
            ],
        )
    data = samples(found)
    cv = cross_validate(data, k=k)
    rsrp_ok, ul_ok = cv.lowers("rsrp_db"), cv.lowers("ul_mbps")
    fitted = cv.correction
    applied = Correction(
        fitted.global_offset_db if rsrp_ok else 0.0,
        fitted.site_offsets_db if rsrp_ok else {},
        fitted.ul_factor if ul_ok else {},
    )
    row = Calibration(
        actor=actor,
        status="applied" if rsrp_ok or ul_ok else "refused",
        inputs={
            "coverage_version": version.name,
            "coverage_model": version.summary.get("model"),
            "measurements": len(found),
            "rsrp_measurements": int(np.isfinite(data.measured_rsrp_dbm).sum()),
            "uplink_measurements": int((data.measured_ul_mbps > 0).sum()),
            "unpaired": unpaired,
            "folds": cv.k,
            "block_m": CV_BLOCK_M,
            "first": min(p.measurement.measured_at for p in found).isoformat(),
            "last": max(p.measurement.measured_at for p in found).isoformat(),
        },
        parameters={
            "fitted": fitted.to_dict(),
            "applied": applied.to_dict(),
            "rsrp_applied": rsrp_ok,
            "uplink_applied": ul_ok,
        },
        errors=json_ready(cv.errors),
    )
    session.add(row)
    session.flush()
    return _as_dict(row)


def json_ready(value: Any) -> Any:
    """Nested mappings as plain dicts (for JSON columns)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    return value


def calibrations(session: Session) -> list[dict[str, Any]]:
    """Every calibration, newest first."""
    rows = session.scalars(select(Calibration).order_by(Calibration.id.desc()))
    return [_as_dict(c) for c in rows]


def revert(session: Session, *, actor: str) -> dict[str, Any]:
    """Take the calibration in force out of force; the previous applied one (if any) is in
    force again."""
    found = in_force(session)
    if found is None:
        raise NotFoundError("no calibration is in force")
    found.status = "reverted"
    found.reverted_at = now_utc()
    found.inputs = {**found.inputs, "reverted_by": actor}
    session.flush()
    previous = in_force(session)
    return {"reverted": _as_dict(found), "in_force": _as_dict(previous) if previous else None}


# ---------------------------------------------------------------- applying
def corrected_grid(grid: TechGrid, correction: Correction) -> TechGrid:
    """A technology's grid with the RSRP offsets (by serving site) and uplink factor."""
    offsets = np.array(
        [correction.site_offsets_db.get(s, correction.global_offset_db) for s in grid.site_codes]
        + [0.0],
        dtype=np.float32,
    )
    index = np.where(grid.best_server == NO_SERVER, len(grid.site_codes), grid.best_server)
    rsrp = (grid.rsrp_dbm + offsets[index]).astype(grid.rsrp_dbm.dtype)
    ul = (grid.ul_rate_mbps * correction.ul_factor.get(grid.technology, 1.0)).astype(
        grid.ul_rate_mbps.dtype
    )
    rsrp.flags.writeable = ul.flags.writeable = False
    return TechGrid(
        grid.technology,
        grid.transform,
        grid.best_server,
        grid.site_codes,
        grid.sector_codes,
        rsrp,
        ul,
    )


#: Corrected grids by (coverage version, calibration id); two kept (a switch in progress).
_CACHE: dict[tuple[str, int], dict[str, TechGrid]] = {}
_CACHE_SIZE = 2


def calibrated_grids(
    version: CoverageVersion, grids: Mapping[str, TechGrid], session: Session
) -> dict[str, TechGrid]:
    """The grids the verdicts read: the version's, corrected by the calibration in force
    (cached per version and calibration)."""
    calibration_id, correction = correction_in_force(session)
    if calibration_id is None:
        return dict(grids)
    key = (version.name, calibration_id)
    if key not in _CACHE:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = {t: corrected_grid(g, correction) for t, g in grids.items()}
    return _CACHE[key]


# ---------------------------------------------------------------- measured beside predicted
def comparison(config: Config, session: Session) -> dict[str, Any]:
    """Every paired measurement with the prediction as the verdict reads it (calibration in
    force applied), and count / bias / RMSE per commune and technology (bias = predicted -
    measured: RSRP in dB, uplink in Mbps)."""
    version = current(config)
    found, unpaired = pairs(version, session)
    calibration_id, correction = correction_in_force(session)
    names = {c.code: c.name for c in queries.communes(session)}
    points = []
    for p in found:
        m = p.measurement
        rsrp = (
            None
            if p.predicted_rsrp_dbm is None
            else p.predicted_rsrp_dbm
            + correction.site_offsets_db.get(p.site_code, correction.global_offset_db)
        )
        ul = (
            None
            if p.predicted_ul_mbps is None
            else p.predicted_ul_mbps * correction.ul_factor.get(p.technology, 1.0)
        )
        points.append(
            {
                "code": m.code,
                "lon": m.geom.x,
                "lat": m.geom.y,
                "measured_at": m.measured_at.isoformat(),
                "technology": p.technology,
                "site_code": p.site_code,
                "commune_code": p.commune_code,
                "seller_code": m.seller_code,
                "measured_rsrp_dbm": m.rsrp_dbm,
                "predicted_rsrp_dbm": None if rsrp is None else round(rsrp, 1),
                "rsrp_error_db": None
                if rsrp is None or m.rsrp_dbm is None
                else round(rsrp - m.rsrp_dbm, 1),
                "measured_ul_mbps": m.ul_rate_mbps,
                "predicted_ul_mbps": None if ul is None else round(ul, 2),
                "ul_error_mbps": None
                if ul is None or m.ul_rate_mbps is None
                else round(ul - m.ul_rate_mbps, 2),
            }
        )
    return {
        "coverage_version": version.name,
        "calibration_id": calibration_id,
        "unpaired": unpaired,
        "points": points,
        "communes": _table(points, "commune_code", names),
        "technologies": _table(points, "technology", {}),
    }


def _stats(errors: Iterable[float | None]) -> dict[str, Any]:
    e = np.array([v for v in errors if v is not None], dtype=np.float64)
    if e.size == 0:
        return {"n": 0, "bias": None, "rmse": None}
    return {
        "n": int(e.size),
        "bias": round(float(e.mean()), 2),
        "rmse": round(float(np.sqrt(np.mean(e**2))), 2),
    }


def _table(
    points: list[dict[str, Any]], key: str, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    rows = []
    for value in sorted({p[key] for p in points}):
        mine = [p for p in points if p[key] == value]
        rows.append(
            {
                key: value,
                "name": names.get(value, value or "—"),
                "count": len(mine),
                "rsrp_db": _stats(p["rsrp_error_db"] for p in mine),
                "ul_mbps": _stats(p["ul_error_mbps"] for p in mine),
            }
        )
    return rows


def seller_measurements(session: Session, seller: Seller) -> list[Measurement]:
    """Measurements linked to the seller or taken within `SELLER_RADIUS_M` of them, newest
    first."""
    x0, y0 = _metres(seller.geom.x, seller.geom.y)
    d_deg = SELLER_RADIUS_M / M_PER_DEG * 2
    near = session.scalars(
        select(Measurement).where(
            (Measurement.seller_code == seller.code)
            | (
                (Measurement.min_lon.between(seller.geom.x - d_deg, seller.geom.x + d_deg))
                & (Measurement.min_lat.between(seller.geom.y - d_deg, seller.geom.y + d_deg))
            )
        )
    )
    out = []
    for m in near:
        x, y = _metres(m.geom.x, m.geom.y)
        if m.seller_code == seller.code or math.hypot(x - x0, y - y0) <= SELLER_RADIUS_M:
            out.append(m)
    return sorted(out, key=lambda m: m.measured_at, reverse=True)


def recent_uplink(
    session: Session, sellers: Sequence[Seller], *, days: int = RECENT_DAYS
) -> dict[str, Measurement]:
    """Each seller's newest measured uplink of the last ``days`` days (linked to the seller
    or within `SELLER_RADIUS_M`), where there is one; one query for all sellers."""
    since = now_utc() - timedelta(days=days)
    recent = session.scalars(
        select(Measurement).where(
            Measurement.ul_rate_mbps.is_not(None), Measurement.measured_at >= since
        )
    )
    linked: dict[str, list[Measurement]] = {}
    cells: dict[tuple[int, int], list[tuple[float, float, Measurement]]] = {}
    for m in recent:
        if m.seller_code:
            linked.setdefault(m.seller_code, []).append(m)
        x, y = _metres(m.geom.x, m.geom.y)
        key = (math.floor(x / SELLER_RADIUS_M), math.floor(y / SELLER_RADIUS_M))
        cells.setdefault(key, []).append((x, y, m))
    out = {}
    for seller in sellers:
        x0, y0 = _metres(seller.geom.x, seller.geom.y)
        cx, cy = math.floor(x0 / SELLER_RADIUS_M), math.floor(y0 / SELLER_RADIUS_M)
        found = list(linked.get(seller.code, []))
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                found += [
                    m
                    for x, y, m in cells.get((cx + dx, cy + dy), [])
                    if math.hypot(x - x0, y - y0) <= SELLER_RADIUS_M
                ]
        if found:
            out[seller.code] = max(found, key=lambda m: m.measured_at)
    return out


def _day(stamp: datetime, tz: timezone = DEVICE_TIME_ZONE) -> str:
    """The local calendar day of ``stamp`` (ISO), which the reason catalogue formats."""
    return stamp.astimezone(tz).date().isoformat()


def apply_measured(
    row: dict[str, Any],
    measured: Measurement | None,
    thresholds: ServiceClassThresholds,
    required_mbps: float,
) -> dict[str, Any]:
    """A verdict row with its ``measured`` block; where the recent measurement's class
    contradicts the predicted one, the verdict uses the measurement and says so ("measured
    6.2 Mbps on 12 March")."""
    if measured is None:
        return {**row, "measured": None}
    rate = float(measured.ul_rate_mbps or 0.0)
    measured_class = SERVICE_CLASSES[int(service_class_codes([rate], thresholds)[0])]
    contradicts = measured_class != row["service_class"]
    block = {
        "code": measured.code,
        "measured_at": measured.measured_at.isoformat(),
        "ul_rate_mbps": rate,
        "service_class": measured_class,
        "predicted_service_class": row["service_class"],
        "contradicts": contradicts,
    }
    if not contradicts:
        return {**row, "measured": block}
    return {
        **row,
        "measured": block,
        "service_class": measured_class,
        "usable_mbps": round(rate, 2),
        "meets_wanted": rate >= required_mbps,
        "reason": reason(
            "measured",
            ul_rate_mbps=round(rate, 1),
            date=_day(measured.measured_at),
            predicted=row["service_class"],
        ).to_dict(),
    }


#: Error at which the map colour saturates: RSRP (dB) and uplink (Mbps).
ERROR_SCALE = {"rsrp_error_db": 15.0, "ul_error_mbps": 5.0}


def error_colour(error: float | None, scale: float) -> str:
    """Red where the prediction is too optimistic, blue where too pessimistic, grey unknown.

    >>> error_colour(15.0, 15.0), error_colour(-15.0, 15.0), error_colour(None, 15.0)
    ('#d7301f', '#2166ac', '#999999')
    """
    if error is None:
        return "#999999"
    t = max(-1.0, min(1.0, error / scale))
    white, red, blue = (247, 247, 247), (215, 48, 31), (33, 102, 172)
    end = red if t > 0 else blue
    rgb = [round(w + (e - w) * abs(t)) for w, e in zip(white, end, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def error_features(
    config: Config, session: Session, *, province: str | None = None
) -> dict[str, Any]:
    """The paired measurements (of one province's communes, or all) as a GeoJSON
    FeatureCollection with their errors and a ``colour`` by RSRP error (uplink error where
    there is no RSRP)."""
    mine = {c.code for c in queries.communes(session) if province in (None, c.province)}
    features = []
    for p in comparison(config, session)["points"]:
        if province is not None and p["commune_code"] not in mine:
            continue
        key = "rsrp_error_db" if p["rsrp_error_db"] is not None else "ul_error_mbps"
        props = {k: v for k, v in p.items() if k not in ("lon", "lat")}
        props["colour"] = error_colour(p[key], ERROR_SCALE[key])
        features.append(
            {
                "type": "Feature",
                "id": p["code"],
                "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "name": "measurement_errors", "features": features}
