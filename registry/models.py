"""SQLAlchemy models of the registry.

Records are addressed by a natural key ``code`` (stable across imports and exports); references
between records use those codes. Every table has created/updated stamps and a ``version`` used
for optimistic locking. Field constraints live in each column's ``info`` (``ge``, ``le``,
``choices``, ``pattern``) so validation (``registry.schemas``) and the OpenAPI document are
derived from one place.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any, ClassVar, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from registry.db import Geometry, UtcDateTime
from registry.radio.linkbudget import SERVICE_CLASSES_BEST_FIRST, Technology

SITE_STATUS = ("planned", "active", "down")
BACKHAUL_KINDS = ("fibre", "microwave", "satellite")
LINK_STATUS = ("planned", "active", "cut")
TECHNOLOGIES: tuple[Technology, ...] = get_args(Technology)
SERVICE_CLASSES = SERVICE_CLASSES_BEST_FIRST
FIBRE_NODE_KINDS = ("core", "pop", "splice", "site")
MEASUREMENT_KINDS = ("speedtest", "rsrp")
#: Where a measurement came from: an app's export (`registry.io.measurements`), the plain CSV
#: template, or the `/measure` phone page.
MEASUREMENT_SOURCES = ("speedtest_app", "gnettrack", "netcellinfo", "csv", "phone")
#: Largest cell identity: NR NCI has 36 bits (TS 38.300 §8.2); LTE ECI 28 (TS 36.300 §8.2).
MAX_CELL_IDENTITY = 2**36 - 1
CALIBRATION_STATUS = ("applied", "refused", "reverted")


def now_utc() -> datetime:
    return datetime.now(UTC)


def search_key(text: str | None) -> str:
    """Lower-case, diacritics-free form of a name, so "binh lu" finds "Bình Lư".

    >>> search_key("Bình Lư — Đoàn Kết")
    'binh lu — doan ket'
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def col(
    type_: Any, *args: Any, nullable: bool = False, index: bool = False, doc: str = "", **info: Any
) -> Any:
    """A mapped column whose validation constraints are kept in ``info``."""
    return mapped_column(type_, *args, nullable=nullable, index=index, doc=doc, info=info)


class Base(DeclarativeBase):
    """Metadata shared by every table."""


class Record(Base):
    """A registry record: surrogate id, natural key, stamps, version (optimistic lock)."""

    __abstract__ = True

    #: URL and layer name of the entity, e.g. "sites".
    layer: ClassVar[str]
    #: Shape its geometry must have, or None for records without geometry.
    geometry_type: ClassVar[str | None] = "Point"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(
        String(64), unique=True, index=True, doc="natural key, unique in the layer"
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc, onupdate=now_utc)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version}


#: Bounding-box columns of spatial records.
BBOX_COLUMNS = ("min_lon", "min_lat", "max_lon", "max_lat")


class Spatial:
    """Geometry plus its bounding box, for portable bbox filtering.

    The box columns are indexed on SQLite only: PostGIS filters with the GiST index on
    ``geom``, and there the B-trees would only slow writes
    and tempt the planner into AND-ing a GiST scan with a scan of half a B-tree.
    """

    __tablename__: str
    geom: Mapped[Any] = mapped_column(Geometry(), nullable=False)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:  # noqa: N805
        name = cls.__tablename__
        gist = Index(f"{name}_geom_gist", "geom", postgresql_using="gist")
        return (
            *(Index(f"ix_{name}_{c}", c).ddl_if(dialect="sqlite") for c in BBOX_COLUMNS),
            gist.ddl_if(dialect="postgresql"),
        )


class Named:
    name: Mapped[str] = col(String(200), doc="name as written, with diacritics (NFC)")
    name_key: Mapped[str] = mapped_column(Text, index=True, default="")


class Commune(Named, Spatial, Record):
    __tablename__ = "communes"
    layer = "communes"
    geometry_type = "MultiPolygon"

    # The province is a column, not a table: a province has no attributes of its own (its
    # boundary is the union of its communes, its population their sum), and as a column it
    # travels with every commune through import and export.
    province: Mapped[str] = col(String(80), index=True, doc="province the commune belongs to")
    type: Mapped[str] = col(String(40), doc="Xã or Phường")
    population: Mapped[int] = col(Integer, ge=0, le=10_000_000, doc="people (2025)")
    area_km2: Mapped[float | None] = col(Float, nullable=True, ge=0, le=100_000)
    admin_center_lon: Mapped[float | None] = col(Float, nullable=True, ge=-180, le=180)
    admin_center_lat: Mapped[float | None] = col(Float, nullable=True, ge=-90, le=90)
    before_merger: Mapped[str | None] = col(
        Text, nullable=True, doc="communes merged into it on 1 July 2025"
    )
    synthetic: Mapped[bool] = col(Boolean, doc="true for generated demo records")


class Village(Named, Spatial, Record):
    __tablename__ = "villages"
    layer = "villages"

    commune_code: Mapped[str] = col(String(64), ForeignKey("communes.code"), index=True)
    population: Mapped[int] = col(Integer, ge=0, le=1_000_000)
    households: Mapped[int | None] = col(Integer, nullable=True, ge=0, le=500_000)
    synthetic: Mapped[bool] = col(Boolean, doc="true for generated demo records")


class FibreNode(Named, Spatial, Record):
    __tablename__ = "fibre_nodes"
    layer = "fibre_nodes"

    kind: Mapped[str] = col(String(20), choices=FIBRE_NODE_KINDS)
    synthetic: Mapped[bool] = col(Boolean)


class FibreLink(Spatial, Record):
    __tablename__ = "fibre_links"
    layer = "fibre_links"
    geometry_type = "LineString"

    from_node_code: Mapped[str] = col(String(64), ForeignKey("fibre_nodes.code"), index=True)
    to_node_code: Mapped[str] = col(String(64), ForeignKey("fibre_nodes.code"), index=True)
    road: Mapped[str | None] = col(String(20), nullable=True, doc="national road it follows")
    capacity_mbps: Mapped[float] = col(Float, ge=0, le=10_000_000)
    status: Mapped[str] = col(String(20), choices=LINK_STATUS)
    synthetic: Mapped[bool] = col(Boolean)


class Site(Named, Spatial, Record):
    __tablename__ = "sites"
    layer = "sites"

    operator: Mapped[str] = col(String(7), pattern=r"^[0-9]{3}-[0-9]{2,3}$", doc="MCC-MNC")
    commune_code: Mapped[str | None] = col(
        String(64), ForeignKey("communes.code"), nullable=True, index=True
    )
    tower_height_m: Mapped[float] = col(Float, ge=0, le=300)
    ground_elevation_m: Mapped[float | None] = col(
        Float, nullable=True, ge=-500, le=9000, doc="from the DEM when not given"
    )
    status: Mapped[str] = col(String(20), choices=SITE_STATUS)
    backhaul_kind: Mapped[str] = col(String(20), choices=BACKHAUL_KINDS)
    backhaul_capacity_mbps: Mapped[float] = col(Float, ge=0, le=1_000_000)
    fibre_node_code: Mapped[str | None] = col(
        String(64), ForeignKey("fibre_nodes.code"), nullable=True, index=True
    )
    synthetic: Mapped[bool] = col(Boolean)


class Sector(Record):
    __tablename__ = "sectors"
    layer = "sectors"
    geometry_type = None

    site_code: Mapped[str] = col(
        String(64), ForeignKey("sites.code", ondelete="CASCADE"), index=True
    )
    technology: Mapped[Technology] = col(String(2), choices=TECHNOLOGIES)
    band: Mapped[str] = col(String(10), doc="3GPP band, e.g. B3, B28, n41")
    freq_mhz: Mapped[float] = col(Float, ge=400, le=7125, doc="downlink centre frequency")
    bandwidth_mhz: Mapped[float] = col(Float, doc="channel bandwidth, a 3GPP value")
    azimuth_deg: Mapped[float] = col(Float, ge=0, le=360)
    mech_tilt_deg: Mapped[float] = col(Float, ge=-20, le=30)
    elec_tilt_deg: Mapped[float] = col(Float, ge=-20, le=30)
    h_beamwidth_deg: Mapped[float] = col(Float, ge=1, le=360)
    v_beamwidth_deg: Mapped[float] = col(Float, ge=1, le=180)
    gain_dbi: Mapped[float] = col(Float, ge=-10, le=40)
    tx_power_dbm: Mapped[float] = col(Float, ge=0, le=70)
    height_m: Mapped[float] = col(Float, ge=0, le=300, doc="antenna height above ground")
    cell_identity: Mapped[int | None] = col(
        BigInteger,
        nullable=True,
        index=True,
        ge=0,
        le=MAX_CELL_IDENTITY,
        doc="LTE ECI (eNB id × 256 + cell id) or NR NCI, as phones report it",
    )
    synthetic: Mapped[bool] = col(Boolean)


class Seller(Named, Spatial, Record):
    __tablename__ = "sellers"
    layer = "sellers"

    village_code: Mapped[str | None] = col(
        String(64), ForeignKey("villages.code"), nullable=True, index=True
    )
    products: Mapped[str] = col(Text, doc="products, separated by ';'")
    platform: Mapped[str | None] = col(String(40), nullable=True)
    handle: Mapped[str | None] = col(String(100), nullable=True)
    phone_tech: Mapped[Technology] = col(String(2), choices=TECHNOLOGIES)
    wanted_class: Mapped[str] = col(String(20), choices=SERVICE_CLASSES[:4])
    synthetic: Mapped[bool] = col(Boolean)


class LivestreamEvent(Named, Spatial, Record):
    __tablename__ = "events"
    layer = "events"

    commune_code: Mapped[str | None] = col(
        String(64), ForeignKey("communes.code"), nullable=True, index=True
    )
    start: Mapped[datetime] = col(UtcDateTime())
    duration_min: Mapped[int] = col(Integer, ge=1, le=7 * 24 * 60)
    streams: Mapped[int] = col(Integer, ge=1, le=10_000)
    orders: Mapped[int | None] = col(Integer, nullable=True, ge=0, le=1_000_000_000)
    views: Mapped[int | None] = col(Integer, nullable=True, ge=0, le=2_000_000_000)
    synthetic: Mapped[bool] = col(Boolean)


class Measurement(Spatial, Record):
    __tablename__ = "measurements"
    layer = "measurements"

    kind: Mapped[str] = col(String(20), choices=MEASUREMENT_KINDS)
    measured_at: Mapped[datetime] = col(UtcDateTime())
    operator: Mapped[str | None] = col(String(7), nullable=True, pattern=r"^[0-9]{3}-[0-9]{2,3}$")
    technology: Mapped[Technology | None] = col(String(2), nullable=True, choices=TECHNOLOGIES)
    site_code: Mapped[str | None] = col(
        String(64),
        ForeignKey("sites.code"),
        nullable=True,
        index=True,
        doc="serving site, when known",
    )
    rsrp_dbm: Mapped[float | None] = col(Float, nullable=True, ge=-160, le=-20)
    dl_rate_mbps: Mapped[float | None] = col(Float, nullable=True, ge=0, le=100_000)
    ul_rate_mbps: Mapped[float | None] = col(Float, nullable=True, ge=0, le=100_000)
    source: Mapped[str | None] = col(String(20), nullable=True, choices=MEASUREMENT_SOURCES)
    cell_identity: Mapped[int | None] = col(
        BigInteger, nullable=True, ge=0, le=MAX_CELL_IDENTITY, doc="serving cell's ECI or NCI"
    )
    sector_code: Mapped[str | None] = col(
        String(64), nullable=True, doc="serving sector, matched from the cell identity"
    )
    seller_code: Mapped[str | None] = col(
        String(64),
        ForeignKey("sellers.code"),
        nullable=True,
        index=True,
        doc="the seller whose place was measured",
    )


class Calibration(Base):
    """One calibration of the predictions against measurements: what it was fitted on, its
    parameters, its held-out errors and whether it is in force (``registry.services.measurements``).
    The one in force is the newest ``applied``; reverting marks it ``reverted``."""

    __tablename__ = "calibrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), index=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    errors: Mapped[dict[str, Any]] = mapped_column(JSON)
    reverted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class Audit(Base):
    """One row per write: who, when, what changed (before and after)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(10))
    entity: Mapped[str] = mapped_column(String(40), index=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


ROLES = ("viewer", "editor", "admin")


class User(Base):
    """A person who signs in: a role (viewer < editor < admin) and a password hash (scrypt)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(10), default="viewer")
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Bumped when the password, role or status changes: signs out every session of the user.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ApiToken(Base):
    """A script's bearer token; only its SHA-256 is stored (the token is shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginSession(Base):
    """One signed-in browser session (its id is in the signed cookie): signing out ends it here,
    so a copy of the cookie is worthless afterwards."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    #: When the password was last typed in this session (sensitive actions ask again).
    password_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class LoginThrottle(Base):
    """Wrong passwords counted per key (a client address, or a username from an address), so
    sign-in slows down guessing in every worker process (``registry.accounts``)."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc, index=True)


class Scenario(Base):
    """A named what-if: changes to sites, sectors and fibre links, kept apart from the registry
    until its new sites are promoted (see ``registry.services.scenarios``)."""

    __tablename__ = "scenarios"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, index=True)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    promoted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


JOB_STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
#: States a job never leaves.
JOB_FINAL_STATES = ("done", "failed", "cancelled", "interrupted")


class Job(Base):
    """A background job (coverage, import, siting, scenario preview), kept in the database so
    that any worker process answers a poll and ``flask jobs worker`` can run it elsewhere.

    ``params`` is everything needed to run (and re-run) it; the process running it stamps
    ``heartbeat_at`` every few seconds, so a job whose process died is seen as interrupted.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    owner: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(String(200), default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``host:pid`` of the process running it.
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True)
    rerun_of: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


#: Registry layers in dependency order (a layer only references layers before it).
LAYERS: tuple[type[Record], ...] = (
    Commune,
    FibreNode,
    FibreLink,
    Site,
    Sector,
    Village,
    Seller,
    LivestreamEvent,
    Measurement,
)
BY_LAYER: dict[str, type[Record]] = {m.layer: m for m in LAYERS}


def derived_columns(model: type[Record], values: dict[str, Any]) -> dict[str, Any]:
    """The search key and bounding box a record with these ``name`` and ``geom`` stores."""
    derived: dict[str, Any] = {}
    if issubclass(model, Named):
        derived["name_key"] = search_key(values["name"])
    if issubclass(model, Spatial) and values.get("geom") is not None:
        bounds = values["geom"].bounds
        derived.update(zip(BBOX_COLUMNS, bounds, strict=True))
    return derived


@event.listens_for(Record, "before_insert", propagate=True)
@event.listens_for(Record, "before_update", propagate=True)
def _derived_columns(_mapper: Any, _conn: Any, target: Any) -> None:
    """Keep the search key and the bounding box in step with name and geometry."""
    values = {"name": getattr(target, "name", None), "geom": getattr(target, "geom", None)}
    for name, value in derived_columns(type(target), values).items():
        setattr(target, name, value)
