"""Communes carry their province (several provinces in one registry).

Communes stored before this revision are Lai Châu's, the only province the registry held.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: The province of every commune stored before this revision.
FIRST_PROVINCE = "Lai Châu"


def upgrade() -> None:
    op.add_column(
        "communes",
        sa.Column("province", sa.String(80), nullable=False, server_default=FIRST_PROVINCE),
    )
    # The default only fills the existing rows (SQLite alters by copying the table, which
    # `registry.db.upgrade` allows by turning foreign keys off meanwhile).
    with op.batch_alter_table("communes") as batch:
        batch.alter_column("province", server_default=None)
    op.create_index("ix_communes_province", "communes", ["province"])


def downgrade() -> None:
    op.drop_index("ix_communes_province", table_name="communes")
    with op.batch_alter_table("communes") as batch:
        batch.drop_column("province")
