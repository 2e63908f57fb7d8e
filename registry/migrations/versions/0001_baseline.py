"""The schema of the release before migrations (what its ``create_all`` made).

Databases made by that release have these tables and no ``alembic_version``; ``registry.db.
upgrade`` stamps them with this revision, so only later revisions run on them.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from registry.db import Geometry, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BBOX = ("min_lon", "min_lat", "max_lon", "max_lat")


def _record(
    name: str, *columns: sa.Column[Any], named: bool, spatial: bool, indexed: tuple[str, ...] = ()
) -> None:
    """A registry layer: its own columns, then those every record, name and geometry has."""
    common: list[sa.Column[Any]] = [
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    ]
    if named:
        common += [
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("name_key", sa.Text(), nullable=False),
        ]
        indexed += ("name_key",)
    if spatial:
        common.append(sa.Column("geom", Geometry(), nullable=False))
        common += [sa.Column(c, sa.Float(), nullable=False) for c in BBOX]
    op.create_table(name, *columns, *common)
    op.create_index(f"ix_{name}_code", name, ["code"], unique=True)
    for column in indexed:
        op.create_index(f"ix_{name}_{column}", name, [column])
    if spatial and op.get_bind().dialect.name == "sqlite":
        for column in BBOX:
            op.create_index(f"ix_{name}_{column}", name, [column])
    if spatial and op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX {name}_geom_gist ON {name} USING gist (geom)")


def _col(name: str, type_: Any, *args: Any, null: bool = False) -> sa.Column[Any]:
    return sa.Column(name, type_, *args, nullable=null)


def _fk(name: str, target: str, *, null: bool = False, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, sa.String(64), sa.ForeignKey(target, **kw), nullable=null)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    s, f, i, b, t = sa.String, sa.Float, sa.Integer, sa.Boolean, UtcDateTime
    op.create_table(
        "audit_log",
        sa.Column("id", i(), primary_key=True, autoincrement=True),
        _col("at", t()),
        _col("actor", s(100)),
        _col("action", s(10)),
        _col("entity", s(40)),
        _col("key", s(64)),
        _col("before", sa.JSON(), null=True),
        _col("after", sa.JSON(), null=True),
    )
    for column in ("at", "entity", "key"):
        op.create_index(f"ix_audit_log_{column}", "audit_log", [column])
    _record(
        "communes",
        _col("type", s(40)),
        _col("population", i()),
        _col("area_km2", f(), null=True),
        _col("admin_center_lon", f(), null=True),
        _col("admin_center_lat", f(), null=True),
        _col("before_merger", sa.Text(), null=True),
        _col("synthetic", b()),
        named=True,
        spatial=True,
    )
    _record("fibre_nodes", _col("kind", s(20)), _col("synthetic", b()), named=True, spatial=True)
    op.create_table(
        "scenarios",
        sa.Column("id", i(), primary_key=True, autoincrement=True),
        _col("name", s(100)),
        _col("changes", sa.JSON()),
        _col("created_at", t()),
        _col("promoted_at", t(), null=True),
    )
    op.create_index("ix_scenarios_name", "scenarios", ["name"], unique=True)
    op.create_table(
        "users",
        sa.Column("id", i(), primary_key=True, autoincrement=True),
        _col("username", s(64)),
        _col("role", s(10)),
        _col("password_hash", s(255)),
        _col("active", b()),
        _col("session_epoch", i()),
        _col("created_at", t()),
        _col("last_login_at", t(), null=True),
        _col("failed_logins", i()),
        _col("locked_until", t(), null=True),
    )
    op.create_index("ix_users_username", "users", ["username"], unique=True)
    op.create_table(
        "api_tokens",
        sa.Column("id", i(), primary_key=True, autoincrement=True),
        _col("user_id", i(), sa.ForeignKey("users.id", ondelete="CASCADE")),
        _col("name", s(100)),
        _col("token_sha256", s(64)),
        _col("created_at", t()),
        _col("last_used_at", t(), null=True),
        _col("revoked", b()),
    )
    op.create_index("ix_api_tokens_token_sha256", "api_tokens", ["token_sha256"], unique=True)
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    _record(
        "events",
        _fk("commune_code", "communes.code", null=True),
        _col("start", t()),
        _col("duration_min", i()),
        _col("streams", i()),
        _col("orders", i(), null=True),
        _col("views", i(), null=True),
        _col("synthetic", b()),
        named=True,
        spatial=True,
        indexed=("commune_code",),
    )
    _record(
        "fibre_links",
        _fk("from_node_code", "fibre_nodes.code"),
        _fk("to_node_code", "fibre_nodes.code"),
        _col("road", s(20), null=True),
        _col("capacity_mbps", f()),
        _col("status", s(20)),
        _col("synthetic", b()),
        named=False,
        spatial=True,
        indexed=("from_node_code", "to_node_code"),
    )
    _record(
        "sites",
        _col("operator", s(7)),
        _fk("commune_code", "communes.code", null=True),
        _col("tower_height_m", f()),
        _col("ground_elevation_m", f(), null=True),
        _col("status", s(20)),
        _col("backhaul_kind", s(20)),
        _col("backhaul_capacity_mbps", f()),
        _fk("fibre_node_code", "fibre_nodes.code", null=True),
        _col("synthetic", b()),
        named=True,
        spatial=True,
        indexed=("commune_code", "fibre_node_code"),
    )
    _record(
        "villages",
        _fk("commune_code", "communes.code"),
        _col("population", i()),
        _col("households", i(), null=True),
        _col("synthetic", b()),
        named=True,
        spatial=True,
        indexed=("commune_code",),
    )
    _record(
        "measurements",
        _col("kind", s(20)),
        _col("measured_at", t()),
        _col("operator", s(7), null=True),
        _col("technology", s(2), null=True),
        _fk("site_code", "sites.code", null=True),
        _col("rsrp_dbm", f(), null=True),
        _col("dl_rate_mbps", f(), null=True),
        _col("ul_rate_mbps", f(), null=True),
        named=False,
        spatial=True,
        indexed=("site_code",),
    )
    _record(
        "sectors",
        _fk("site_code", "sites.code", ondelete="CASCADE"),
        _col("technology", s(2)),
        _col("band", s(10)),
        *(
            _col(name, f())
            for name in (
                "freq_mhz",
                "bandwidth_mhz",
                "azimuth_deg",
                "mech_tilt_deg",
                "elec_tilt_deg",
                "h_beamwidth_deg",
                "v_beamwidth_deg",
                "gain_dbi",
                "tx_power_dbm",
                "height_m",
            )
        ),
        _col("synthetic", b()),
        named=False,
        spatial=False,
        indexed=("site_code",),
    )
    _record(
        "sellers",
        _fk("village_code", "villages.code", null=True),
        _col("products", sa.Text()),
        _col("platform", s(40), null=True),
        _col("handle", s(100), null=True),
        _col("phone_tech", s(2)),
        _col("wanted_class", s(20)),
        _col("synthetic", b()),
        named=True,
        spatial=True,
        indexed=("village_code",),
    )


TABLES = (  # children before parents
    "sellers",
    "sectors",
    "measurements",
    "villages",
    "sites",
    "fibre_links",
    "events",
    "api_tokens",
    "users",
    "scenarios",
    "fibre_nodes",
    "communes",
    "audit_log",
)


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
