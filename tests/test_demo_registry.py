"""The demo command loads the Lai Châu demo into the registry (both backends), idempotently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from registry import store
from registry.models import Commune, Seller, Site, Village


def test_demo_loads_and_reloads(app: Any, runner: Any) -> None:
    result = runner.invoke(args=["demo", "--resolution-m", "600"])
    assert result.exit_code == 0, result.output
    with app.extensions["registry"]["sessions"]() as session:
        assert session.scalar(select(func.sum(Village.population))) == 512_601
        communes = {c.code: c.geom for c in store.list_records(session, Commune)}
        assert len(communes) == 38
        villages = store.list_records(session, Village)
        assert all(communes[v.commune_code].contains(v.geom) for v in villages)
        assert all(v.synthetic for v in villages)
        assert not any(c.synthetic for c in store.list_records(session, Commune))
        # about 2,021 BTS units / 2 per site (2G/3G + 4G; 5G sites have a third)
        assert 950 <= session.scalar(select(func.count()).select_from(Site)) <= 1_010
        assert session.scalar(select(func.count()).select_from(Seller)) == 500
        found = store.list_records(session, Commune, q="binh lu")
        assert [c.name for c in found] == ["Bình Lư"]
    again = runner.invoke(args=["demo", "--resolution-m", "600"])
    assert again.exit_code == 0, again.output
    assert '"created": {"communes": 0' in again.output
    assert '"updated": {"communes": 0' in again.output
