"""Sign-in sessions that signing out ends, and sign-in throttle counts (``registry.accounts``);
the per-user lockout columns they replace are dropped.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from registry.db import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("password_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_login_sessions_user_id", "login_sessions", ["user_id"])
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_login_throttles_last_failure_at", "login_throttles", ["last_failure_at"])
    with op.batch_alter_table("users") as users:  # SQLite drops columns by copying the table
        users.drop_column("failed_logins")
        users.drop_column("locked_until")


def downgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        users.add_column(sa.Column("locked_until", UtcDateTime(), nullable=True))
    op.drop_table("login_throttles")
    op.drop_table("login_sessions")
