"""Field measurements: where each came from, its serving cell and seller; sectors' cell
identities; the calibrations table (``registry.services.measurements``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from registry.db import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sectors") as batch:
        batch.add_column(sa.Column("cell_identity", sa.BigInteger(), nullable=True))
        batch.create_index("ix_sectors_cell_identity", ["cell_identity"])
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("source", sa.String(20), nullable=True))
        batch.add_column(sa.Column("cell_identity", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("sector_code", sa.String(64), nullable=True))
        batch.add_column(sa.Column("seller_code", sa.String(64), nullable=True))
        batch.create_foreign_key(
            "fk_measurements_seller_code_sellers", "sellers", ["seller_code"], ["code"]
        )
        batch.create_index("ix_measurements_seller_code", ["seller_code"])
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("reverted_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_calibrations_created_at", "calibrations", ["created_at"])
    op.create_index("ix_calibrations_status", "calibrations", ["status"])


def downgrade() -> None:
    op.drop_table("calibrations")
    with op.batch_alter_table("measurements") as batch:
        batch.drop_index("ix_measurements_seller_code")
        batch.drop_constraint("fk_measurements_seller_code_sellers", type_="foreignkey")
        for column in ("seller_code", "sector_code", "cell_identity", "source"):
            batch.drop_column(column)
    with op.batch_alter_table("sectors") as batch:
        batch.drop_index("ix_sectors_cell_identity")
        batch.drop_column("cell_identity")
