"""Reading what the exporter shows from the database, as one immutable snapshot."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from okrflow.domain.progress import KeyResultState
from okrflow.store.counters import read_series_states
from okrflow.store.plans import ActivePlan, load_active_plans
from okrflow.store.tables import shop_event_totals


@dataclass(frozen=True)
class ProgressSnapshot:
    """Everything one scrape renders, read in one transaction; progress, pace and status are
    computed from it at scrape time (they move with the clock, not only with events)."""

    taken_at: float  # unix time
    plans: tuple[ActivePlan, ...]
    states: dict[int, KeyResultState]  # key-result id -> counted series
    shop_events: tuple[tuple[str, str, int], ...]  # (shop, type, events)


def read_snapshot(engine: Engine, taken_at: float) -> ProgressSnapshot:
    """Blocks on the database; raises SQLAlchemy errors when it is unreachable."""
    with engine.connect() as conn, conn.begin():
        rows = conn.execute(
            select(
                shop_event_totals.c.shop, shop_event_totals.c.event_type, shop_event_totals.c.events
            ).order_by(shop_event_totals.c.shop, shop_event_totals.c.event_type)
        ).all()
        plans = tuple(load_active_plans(conn))
        ids = [kr_id for plan in plans for kr_id in plan.key_result_ids.values()]
        states = read_series_states(conn, ids)
    return ProgressSnapshot(
        taken_at, plans, dict(states), tuple((s, t, int(n)) for s, t, n in rows)
    )
