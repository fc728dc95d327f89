"""Reading what the exporter shows from the database, as one immutable snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, select

from okrflow.domain.progress import KeyResultState
from okrflow.store.counters import read_series_states
from okrflow.store.plans import ActivePlan, load_active_plans, plans_revision
from okrflow.store.tables import shop_event_totals


@dataclass(frozen=True)
class ProgressSnapshot:
    """Everything one scrape renders, read in one transaction; progress, pace and status are
    computed from it at scrape time (they move with the clock, not only with events)."""

    taken_at: float  # unix time
    plans: tuple[ActivePlan, ...]
    states: Mapping[int, KeyResultState]  # key-result id -> counted series
    shop_events: tuple[tuple[str, str, int], ...]  # (shop, type, events)


class SnapshotReader:
    """Reads snapshots; plans are parsed again only when a plan revision changed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._revision = -1
        self._plans: tuple[ActivePlan, ...] = ()

    def __call__(self, taken_at: float) -> ProgressSnapshot:
        """Blocks on the database; raises SQLAlchemy errors when it is unreachable."""
        with self.engine.connect() as conn, conn.begin():
            revision = plans_revision(conn)
            if revision != self._revision:
                self._plans, self._revision = tuple(load_active_plans(conn)), revision
            rows = conn.execute(
                select(
                    shop_event_totals.c.shop,
                    shop_event_totals.c.event_type,
                    shop_event_totals.c.events,
                ).order_by(shop_event_totals.c.shop, shop_event_totals.c.event_type)
            ).all()
            ids = [kr_id for plan in self._plans for kr_id in plan.key_result_ids.values()]
            states = read_series_states(conn, ids)
        return ProgressSnapshot(
            taken_at, self._plans, states, tuple((s, t, int(n)) for s, t, n in rows)
        )
