"""Alembic environment: runs the registry's migrations on the connection ``registry.db``
hands over (``config.attributes["connection"]``), on SQLite and PostGIS alike."""

from __future__ import annotations

from typing import Any

from alembic import context

from registry.models import Base

connection = context.config.attributes["connection"]


def include_object(obj: Any, _name: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Leave PostGIS's own tables alone, and compare an index only on the backend it is for
    (``Index.ddl_if(dialect=...)``; SQLAlchemy keeps that condition as ``_ddl_if``)."""
    if type_ == "table":
        return not (reflected and compare_to is None)
    if type_ == "index":
        declared = obj if not reflected else compare_to
        condition = getattr(declared, "_ddl_if", None)
        return condition is None or condition.dialect in (None, connection.dialect.name)
    return True


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying the table
    compare_type=True,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
