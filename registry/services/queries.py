"""Every select statement the services run, in one place: small functions, one question each.

They return model rows (or plain tuples); the services turn them into the core's inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.models import (
    BY_LAYER,
    Commune,
    FibreLink,
    FibreNode,
    Measurement,
    Record,
    Scenario,
    Sector,
    Seller,
    Site,
    Village,
)


def sites(session: Session) -> list[Site]:
    return list(session.scalars(select(Site).order_by(Site.code)))


def sectors(session: Session) -> list[Sector]:
    return list(session.scalars(select(Sector).order_by(Sector.code)))


def sectors_of(session: Session, site_codes: Sequence[str]) -> list[Sector]:
    """The sectors of the given sites, by code."""
    return list(
        session.scalars(
            select(Sector).where(Sector.site_code.in_(list(site_codes))).order_by(Sector.code)
        )
    )


def fibre_nodes(session: Session) -> list[FibreNode]:
    return list(session.scalars(select(FibreNode).order_by(FibreNode.code)))


def fibre_links(session: Session) -> list[FibreLink]:
    return list(session.scalars(select(FibreLink).order_by(FibreLink.code)))


def sellers(session: Session) -> list[Seller]:
    return list(session.scalars(select(Seller).order_by(Seller.code)))


def villages(session: Session) -> list[Village]:
    return list(session.scalars(select(Village).order_by(Village.code)))


def communes(session: Session) -> list[Commune]:
    return list(session.scalars(select(Commune).order_by(Commune.code)))


def commune_choices(session: Session) -> list[tuple[str, str]]:
    """(code, name) of every commune, by name (for filters)."""
    rows = session.execute(select(Commune.code, Commune.name).order_by(Commune.name))
    return [(code, name) for code, name in rows]


def rsrp_measurements(session: Session) -> list[Measurement]:
    return list(
        session.scalars(
            select(Measurement).where(Measurement.rsrp_dbm.is_not(None)).order_by(Measurement.code)
        )
    )


def layer_counts(session: Session) -> dict[str, int]:
    """How many records each layer holds."""
    return {
        layer: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for layer, model in BY_LAYER.items()
    }


def layer_stamp(session: Session, model: type[Record]) -> tuple[Any, ...]:
    """A layer's size and last change: what a cached rendering of it depends on."""
    return tuple(
        session.execute(select(func.count(), func.max(model.updated_at)).select_from(model)).one()
    )


def scenarios(session: Session) -> list[Scenario]:
    return list(session.scalars(select(Scenario).order_by(Scenario.name)))


def scenario(session: Session, name: str) -> Scenario | None:
    return session.scalar(select(Scenario).where(Scenario.name == name))
