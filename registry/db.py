"""Engine, sessions and schema: one SQLite file (WAL) by default, PostGIS by URL.

Geometry is one column type for both backends: WKB in a BLOB on SQLite (no system library
needed; spatial filters use the bounding-box columns) and a PostGIS ``geometry(…, 4326)``
through GeoAlchemy2 on PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, DateTime, Engine, LargeBinary, create_engine, event, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator, UserDefinedType

log = logging.getLogger(__name__)

SRID = 4326


class PostgisGeometry(UserDefinedType[BaseGeometry]):
    """PostGIS ``geometry(<type>, 4326)``; values travel as hex EWKB, which PostGIS casts."""

    cache_ok = True

    def __init__(self, geometry_type: str = "GEOMETRY") -> None:
        self.geometry_type = geometry_type

    def get_col_spec(self, **_kw: Any) -> str:
        return f"geometry({self.geometry_type}, {SRID})"


class Geometry(TypeDecorator[BaseGeometry]):
    """A shapely geometry in EPSG:4326: WKB in a BLOB on SQLite, PostGIS geometry on PostgreSQL.

    (GeoAlchemy2's column type is not used: its DDL hooks cannot handle a type that is a BLOB on
    one backend and a geometry on the other, and this needs nothing more than WKB both ways.)
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(PostgisGeometry())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: BaseGeometry | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return shapely.to_wkb(shapely.set_srid(value, SRID), hex=True, include_srid=True)
        return shapely.to_wkb(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> BaseGeometry | None:
        return None if value is None else shapely.from_wkb(value)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware date-time stored as UTC (SQLite keeps no offset; PostgreSQL keeps the instant)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str) -> Engine:
    """Create the engine; on SQLite, create the file's folder and turn on WAL and foreign keys."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    return engine


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The revision whose schema the release before migrations created with ``create_all``.
BASELINE_REVISION = "0001"


def _alembic(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (`flask db upgrade`; the only DDL path).

    A database made by the release before migrations (its tables, no ``alembic_version``) is
    first stamped with the baseline revision, so its data are kept and only newer revisions run.
    """
    from alembic import command

    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:  # SQLite alters a table by copying it: a DROP must not cascade meanwhile
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                tables = set(inspect(conn).get_table_names())
                config = _alembic(conn)
                if "communes" in tables and "alembic_version" not in tables:
                    log.info("stamping a database made before migrations as %s", BASELINE_REVISION)
                    command.stamp(config, BASELINE_REVISION)
                command.upgrade(config, revision)
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("the migration left rows whose references are broken")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def current_revision(engine: Engine) -> str | None:
    """The schema's revision, or None for a database without the registry's schema."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory(str(MIGRATIONS)).get_current_head())


def drop_schema(engine: Engine) -> None:
    """Drop every table of the registry and its migration stamp (tests, `flask db reset`)."""
    from registry.models import Base

    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, future=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed as a whole, or rolled back on any error."""
    with factory() as session, session.begin():
        yield session
