"""Reading what the exporter shows from the database, as one immutable snapshot."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from okrflow.store.tables import shop_event_totals


@dataclass(frozen=True)
class ProgressSnapshot:
    """Everything one scrape renders; taken in one read transaction."""

    taken_at: float  # unix time
    shop_events: tuple[tuple[str, str, int], ...]  # (shop, type, events)


def read_snapshot(engine: Engine, taken_at: float) -> ProgressSnapshot:
    """Blocks on the database; raises SQLAlchemy errors when it is unreachable."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                shop_event_totals.c.shop, shop_event_totals.c.event_type, shop_event_totals.c.events
            ).order_by(shop_event_totals.c.shop, shop_event_totals.c.event_type)
        ).all()
    return ProgressSnapshot(taken_at, tuple((s, t, int(n)) for s, t, n in rows))
