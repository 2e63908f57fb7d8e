"""What-if scenarios: add, move, change or remove sites, sectors and fibre links without
touching the registry, preview what they change, then promote their new sites as planned.

A preview applies the changes inside a database transaction that is always rolled back, so the
same validation as every write applies and nothing is stored; the scenario's coverage goes to
its own folder. (On SQLite the preview holds the write lock while it runs.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from registry import store
from registry.errors import ConflictError, NotFoundError, ValidationError
from registry.models import BY_LAYER, Scenario
from registry.radio.linkbudget import SERVICE_CLASSES
from registry.schemas import check_text
from registry.services import queries
from registry.services import readiness as readiness_service
from registry.services.coverage import run_coverage

ACTIONS = ("add", "change", "remove")
CHANGEABLE = ("sites", "sectors", "fibre_links")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


def _problem(i: int, field: str, reason: str) -> dict[str, Any]:
    return {"row": i, "field": field, "reason": reason}


def check_shape(changes: Any) -> list[dict[str, Any]]:
    """The changes as a list of ``{action, layer, code, data}``; ValidationError if malformed."""
    if not isinstance(changes, list) or not changes:
        raise ValidationError(
            "bad changes", details=[{"field": "changes", "reason": "must be a non-empty list"}]
        )
    problems = []
    for i, change in enumerate(changes, start=1):
        if not isinstance(change, dict):
            problems.append(_problem(i, "change", "must be an object"))
            continue
        if change.get("action") not in ACTIONS:
            problems.append(_problem(i, "action", f"must be one of {', '.join(ACTIONS)}"))
        if change.get("layer") not in CHANGEABLE:
            problems.append(_problem(i, "layer", f"must be one of {', '.join(CHANGEABLE)}"))
        if not isinstance(change.get("code"), str) or not change.get("code"):
            problems.append(_problem(i, "code", "is required"))
        if change.get("action") != "remove" and not isinstance(change.get("data"), dict):
            problems.append(_problem(i, "data", "must be an object of fields"))
    if problems:
        raise ValidationError("bad changes", details=problems)
    return changes


def apply_changes(
    session: Session, changes: Sequence[Mapping[str, Any]], *, actor: str, new_site_status: str
) -> list[str]:
    """Apply the changes through the registry's own writes; returns the added site codes.

    Problems are reported with the change's number as ``row``.
    """
    added = []
    for i, change in enumerate(changes, start=1):
        model, code = BY_LAYER[change["layer"]], change["code"]
        data = dict(change.get("data") or {})
        try:
            if change["action"] == "add":
                if model.layer == "sites":
                    data["status"] = new_site_status
                    added.append(code)
                store.create_record(
                    session, model, {**data, "code": code}, actor=actor, area_bbox=None
                )
            elif change["action"] == "change":
                store.update_record(
                    session, model, code, data, expected_version=None, actor=actor, area_bbox=None
                )
            else:
                store.delete_record(session, model, code, expected_version=None, actor=actor)
        except (ValidationError, NotFoundError, ConflictError) as exc:
            details = exc.details or [{"field": "code", "reason": exc.message}]
            raise ValidationError(
                f"change {i} cannot be applied", details=[{"row": i, **d} for d in details]
            ) from None
    return added


def save(factory: sessionmaker[Session], name: str, changes: Any) -> dict[str, Any]:
    """Store (or replace) a scenario after checking its changes apply to the registry."""
    check_text(name, "name")
    if not re.match(NAME_PATTERN, name):
        raise ValidationError(
            "bad name",
            details=[{"field": "name", "reason": "must be 1–100 letters, digits or . _ -"}],
        )
    changes = check_shape(changes)
    with factory() as trial:
        trial.begin()
        try:
            apply_changes(trial, changes, actor="scenario-check", new_site_status="active")
        finally:
            trial.rollback()
    with factory() as session, session.begin():
        scenario = queries.scenario(session, name)
        if scenario is None:
            scenario = Scenario(name=name, changes=changes)
            session.add(scenario)
        else:
            scenario.changes, scenario.promoted_at = changes, None
    return {"name": name, "changes": changes}


def get(session: Session, name: str) -> Scenario:
    scenario = queries.scenario(session, name)
    if scenario is None:
        raise NotFoundError(f"no scenario {name!r}")
    return scenario


def listing(session: Session) -> list[dict[str, Any]]:
    """Every scenario: name, number of changes, when it was promoted."""
    return [
        {
            "name": r.name,
            "changes": len(r.changes),
            "promoted_at": r.promoted_at.isoformat() if r.promoted_at else None,
        }
        for r in queries.scenarios(session)
    ]


def _state(config: Mapping[str, Any], session: Session) -> dict[str, Any]:
    """Province KPIs, seller classes and village classes of the registry as the session sees it."""
    inputs = readiness_service.load_inputs(config, session)
    verdicts = readiness_service.seller_rows(inputs)
    villages = {
        v.code: (v.name, v.population, inputs.any_class(v.code, v.geom.x, v.geom.y))
        for v in inputs.villages
    }
    province = readiness_service.kpi_table(inputs, verdicts)[0]
    keys = [k for k in province if k.startswith(("population_any", "sellers_any", "villages_any"))]
    return {
        "kpis": {k: province[k] for k in keys},
        "sellers": {v["code"]: (v["name"], v["service_class"]) for v in verdicts},
        "villages": villages,
    }


def preview(
    config: Mapping[str, Any],
    factory: sessionmaker[Session],
    name: str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """What the scenario changes: KPI deltas and the sellers and villages that gain or lose a
    class. The registry is left exactly as it was."""
    rank = {c: i for i, c in enumerate(SERVICE_CLASSES)}
    with factory() as session:
        before = _state(config, session)
        changes = get(session, name).changes
    folder = Path(config["DATA_DIR"]) / "scenarios" / name / "coverage"
    scenario_config = {**config, "COVERAGE_DIR": str(folder)}
    with factory() as session:
        session.begin()
        try:
            apply_changes(session, changes, actor=f"scenario:{name}", new_site_status="active")
            session.flush()
            run_coverage(scenario_config, session, progress=progress)
            after = _state(scenario_config, session)
        finally:
            session.rollback()

    def moved(old: Mapping[str, Any], new: Mapping[str, Any], key: int) -> list[dict[str, Any]]:
        rows = []
        for code, row in new.items():
            was = old.get(code, row)[key]
            if was != row[key]:
                rows.append(
                    {
                        "code": code,
                        "name": row[0],
                        "before": was,
                        "after": row[key],
                        "gains": rank[row[key]] > rank[was],
                        **({"population": row[1]} if key == 2 else {}),
                    }
                )
        return rows

    villages = moved(before["villages"], after["villages"], 2)
    return {
        "name": name,
        "kpi_delta": {k: round(after["kpis"][k] - v, 4) for k, v in before["kpis"].items()},
        "kpis_before": before["kpis"],
        "kpis_after": after["kpis"],
        "sellers": moved(before["sellers"], after["sellers"], 1),
        "villages": villages,
        "population_gaining": sum(v["population"] for v in villages if v["gains"]),
        "population_losing": sum(v["population"] for v in villages if not v["gains"]),
    }


def promote(factory: sessionmaker[Session], name: str, *, actor: str) -> dict[str, Any]:
    """Add the scenario's new sites (with their new sectors) to the registry as planned."""
    with factory() as session, session.begin():
        scenario = get(session, name)
        new_sites = {
            c["code"] for c in scenario.changes if c["action"] == "add" and c["layer"] == "sites"
        }
        wanted = [
            c
            for c in scenario.changes
            if c["action"] == "add"
            and (
                c["code"] in new_sites
                or (c["layer"] == "sectors" and c["data"].get("site_code") in new_sites)
            )
        ]
        if not wanted:
            raise ValidationError(
                "nothing to promote",
                details=[{"field": "changes", "reason": "the scenario adds no site"}],
            )
        added = apply_changes(session, wanted, actor=actor, new_site_status="planned")
        scenario.promoted_at = datetime.now(UTC)
    return {
        "name": name,
        "sites": added,
        "sectors": [c["code"] for c in wanted if c["layer"] == "sectors"],
    }
