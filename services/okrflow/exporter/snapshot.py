"""Reading what the exporter shows from the database, as one immutable snapshot."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from okrflow.domain.progress import KeyResultState
from okrflow.store.counters import read_series_states
from okrflow.store.plans import ActivePlan, load_active_plans, plans_revision
from okrflow.store.tables import applied_offsets, shop_event_totals

# Built once (statements built per refresh leave reference cycles for the collector).
_APPLIED_OFFSETS_SUM = select(func.coalesce(func.sum(applied_offsets.c.next_offset), 0))
_SHOP_EVENT_TOTALS = select(
    shop_event_totals.c.shop, shop_event_totals.c.event_type, shop_event_totals.c.events
).order_by(shop_event_totals.c.shop, shop_event_totals.c.event_type)


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

    def __init__(self, engine: Engine, checkpoint: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.checkpoint = checkpoint
        self._revision = -1
        self._plans: tuple[ActivePlan, ...] = ()
        self._applied = -1

    def __call__(self, taken_at: float) -> ProgressSnapshot | None:
        """A new snapshot, or None when nothing changed since the last one (no plan applied,
        no batch committed): checking costs two small queries, reading costs thousands of rows.
        Blocks on the database; raises SQLAlchemy errors when it is unreachable."""
        with self.engine.connect() as conn, conn.begin():
            revision = plans_revision(conn)
            applied = int(conn.execute(_APPLIED_OFFSETS_SUM).scalar_one())
            if revision == self._revision and applied == self._applied:
                return None
            self._applied = applied
            if revision != self._revision:
                self._plans, self._revision = tuple(load_active_plans(conn)), revision
            rows = conn.execute(_SHOP_EVENT_TOTALS).all()
            ids = [kr_id for plan in self._plans for kr_id in plan.key_result_ids.values()]
            states = read_series_states(conn, ids, self.checkpoint)
        return ProgressSnapshot(
            taken_at, self._plans, states, tuple((s, t, int(n)) for s, t, n in rows)
        )
