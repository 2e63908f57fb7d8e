"""Schema migrations: the models and the migrations agree, and a registry made by the release
before migrations is upgraded in place with every record kept."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import func, select, text

from registry import create_app, db
from registry.models import LAYERS, ApiToken, Audit, Job, User

FIXTURES = Path(__file__).parent / "fixtures"


def test_migrations_create_exactly_the_models(db_url: str) -> None:
    engine = db.make_engine(db_url)
    assert db.current_revision(engine) == db.head_revision()
    with engine.begin() as conn:
        command.check(db._alembic(conn))  # raises when autogenerate finds a difference
    engine.dispose()


def _previous_release(db_url: str, tmp_path: Path) -> str:
    """A database as the release before migrations left it (the fixtures)."""
    if db_url.startswith("sqlite"):
        path = tmp_path / "old.sqlite"
        with closing(sqlite3.connect(path)) as conn:  # the dump as `sqlite3 .dump` writes it
            conn.executescript((FIXTURES / "release-0.1.sqlite.sql").read_text("utf-8"))
        return f"sqlite:///{path}"
    engine = db.make_engine(db_url)
    db.drop_schema(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql((FIXTURES / "release-0.1.postgis.sql").read_text("utf-8"))
        conn.exec_driver_sql("SET search_path TO public")
    engine.dispose()
    return db_url


def _everything(app: Any, like: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every stored row of every layer, as raw columns (the models may have columns the old
    schema lacks; with ``like``, only the columns ``like`` has), and the other tables' counts."""
    with app.extensions["registry"]["sessions"]() as session:
        snap: dict[str, Any] = {}
        for m in LAYERS:
            rows = session.execute(text(f"SELECT * FROM {m.__tablename__} ORDER BY id"))
            snap[m.layer] = [dict(r) for r in rows.mappings()]
            if like is not None:
                keys = like[m.layer][0].keys() if like[m.layer] else ()
                snap[m.layer] = [{k: r[k] for k in keys} for r in snap[m.layer]]
        for model in (Audit, User, ApiToken):
            snap[model.__tablename__] = session.scalar(select(func.count()).select_from(model))
        return snap


def test_upgrade_of_the_previous_release_keeps_every_record(db_url: str, tmp_path: Path) -> None:
    url = _previous_release(db_url, tmp_path)
    app = create_app({"DATABASE_URL": url, "DATA_DIR": str(tmp_path / "data")})
    engine = app.extensions["registry"]["engine"]
    assert db.current_revision(engine) is None
    before = _everything(app)
    assert before["audit_log"] == 16 and before["users"] == 1 and before["api_tokens"] == 1
    assert "Bình Lư trung tâm" in {s["name"] for s in before["sites"]}
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0 and f"revision {db.head_revision()}" in result.output
    assert _everything(app, before) == before
    with app.extensions["registry"]["sessions"]() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0  # the new table
        # communes stored before several provinces are Lai Châu's
        assert session.scalars(text("SELECT DISTINCT province FROM communes")).all() == ["Lai Châu"]
        site = session.execute(
            text("SELECT version, tower_height_m FROM sites WHERE code = :c"), {"c": "VT-BL-01"}
        ).one()
    assert tuple(site) == (2, 35.0)
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0  # again: nothing to do
    assert _everything(app, before) == before
    engine.dispose()
