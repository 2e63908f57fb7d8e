"""The registry's background job kinds: each runs one service from the parameters stored with
its job (so any process, e.g. `flask jobs worker`, can run or re-run it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry import io, store
from registry.db import transaction
from registry.jobs import JobContext, kind
from registry.services import coverage as coverage_service
from registry.services import scenarios
from registry.services import siting as siting_service


@kind("coverage")
def coverage(ctx: JobContext) -> dict[str, Any]:
    with ctx.sessions() as session:
        return coverage_service.run_coverage(ctx.config, session, progress=ctx.progress)


@kind("siting")
def siting(ctx: JobContext) -> dict[str, Any]:
    with ctx.sessions() as session:
        return siting_service.run_siting(ctx.config, session, **ctx.params)


@kind("scenario-preview")
def scenario_preview(ctx: JobContext) -> dict[str, Any]:
    return scenarios.preview(ctx.config, ctx.sessions, ctx.params["name"], progress=ctx.progress)


def upload_path(config: Any, token: str) -> Path:
    """Where an uploaded file waits for its import job (``DATA_DIR/uploads``)."""
    return Path(config["DATA_DIR"]) / "uploads" / f"{token}.bin"


@kind("import")
def import_file(ctx: JobContext) -> dict[str, Any]:
    """Store an uploaded file all or nothing (``params``: upload token, file name, format,
    layer, whether records may lie outside the area, and who sent it)."""
    p = ctx.params
    path = upload_path(ctx.config, p["upload"])
    area = None if p["allow_outside_area"] else ctx.config["AREA_BBOX"]
    try:  # a crash of the process leaves the file for a re-run; an outcome removes it
        layers = io.read_layers(
            path.read_bytes(), fmt=p["fmt"], filename=p["filename"], layer=p["layer"]
        )
        total = sum(len(rows) for rows in layers.values())
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            ctx.progress(done[0], total)

        ctx.progress(0, total, "validating")
        with transaction(ctx.sessions) as session:
            report = store.import_layers(
                session, layers, actor=p["actor"], area_bbox=area, progress=step
            )
    finally:
        path.unlink(missing_ok=True)
    return report.to_dict()
