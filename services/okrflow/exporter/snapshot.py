"""Reading what the exporter shows from the database, as one immutable snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, func, select

from okrflow.domain.kpis import KpiProgress
from okrflow.domain.periods import local_day
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import KeyResultState
from okrflow.plans.stored import load_active_plans
from okrflow.reports.kpis import read_kpis
from okrflow.store.backfill_jobs import backfill_clock, backfilling_key_results, remaining_messages
from okrflow.store.plan_clock import plans_revision
from okrflow.store.series_reads import read_series_states
from okrflow.store.tables import applied_offsets, shop_event_totals, shops

# Built once (statements built per refresh leave reference cycles for the collector).
_APPLIED_OFFSETS_SUM = select(func.coalesce(func.sum(applied_offsets.c.next_offset), 0))
# Only shops with a plan in force are shown (render.bounded_shop_events also folds their
# unplanned types into "other"): the rows of other shops are not even read.
_SHOP_EVENT_TOTALS = (
    select(shop_event_totals.c.shop, shop_event_totals.c.event_type, shop_event_totals.c.events)
    .where(shop_event_totals.c.shop.in_(select(shops.c.shop).where(shops.c.revision_id > 0)))
    .order_by(shop_event_totals.c.shop, shop_event_totals.c.event_type)
)


@dataclass(frozen=True)
class ProgressSnapshot:
    """Everything one scrape renders, read in one transaction; progress, pace and status are
    computed from it at scrape time (they move with the clock, not only with events)."""

    taken_at: float  # unix time
    plans: tuple[ActivePlan, ...]
    states: Mapping[int, KeyResultState]  # key-result id -> counted series
    shop_events: tuple[tuple[str, str, int], ...]  # (shop, type, events)
    backfilling: frozenset[int] = frozenset()  # key-result ids whose backfill is not done
    # shop -> its KPIs over the windows ending on its local day at `taken_at`, in file order
    kpis: Mapping[str, tuple[KpiProgress, ...]] = field(default_factory=dict)
    # shop -> messages below its unfinished backfill jobs' cuts not read yet
    backfill_remaining: Mapping[str, int] = field(default_factory=dict)


def kpi_days(plans: tuple[ActivePlan, ...], taken_at: float) -> tuple[date | None, ...]:
    """Per plan, the local day its KPI windows end on at `taken_at` (None without KPIs)."""
    instant = datetime.fromtimestamp(taken_at, UTC)
    return tuple(
        local_day(instant, active.plan.timezone) if active.plan.kpis else None for active in plans
    )


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection in a read-only transaction that sees ONE snapshot of the database for
    all its statements.

    PostgreSQL's default READ COMMITTED gives each statement its own snapshot, so a batch
    committed between two queries is half seen (a key result's events total disagreeing with
    its own day buckets): REPEATABLE READ fixes the snapshot at the first statement. Python's
    sqlite3 starts no transaction for SELECTs, so each one autocommits with its own snapshot:
    an explicit BEGIN makes WAL keep one read snapshot until the transaction ends. Neither
    blocks writers.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        try:
            with conn.begin():
                if conn.dialect.name == "sqlite":
                    dbapi = conn.connection.dbapi_connection
                    # A writer engine's own "begin" already emitted BEGIN IMMEDIATE.
                    if dbapi is not None and not dbapi.in_transaction:
                        conn.exec_driver_sql("BEGIN DEFERRED")
                yield conn
        except BaseException:
            # A read that failed half way may leave a result open (kept alive by the
            # traceback): on SQLite its statement would keep pinning this connection's old
            # snapshot after the rollback, and every later read on it would see that.
            # Discard the connection; the pool opens a fresh one.
            conn.invalidate()
            raise


class SnapshotReader:
    """Reads snapshots; plans are parsed again only when a plan revision changed."""

    def __init__(self, engine: Engine, checkpoint: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.checkpoint = checkpoint
        self._revision = -1
        self._plans: tuple[ActivePlan, ...] = ()
        self._applied: tuple[int, tuple[int, int]] | None = None
        self._days: tuple[date | None, ...] = ()

    def __call__(self, taken_at: float) -> ProgressSnapshot | None:
        """A new snapshot, or None when nothing changed since the last one (no plan applied,
        no batch committed, no local midnight moved a KPI window): checking costs two small
        queries, reading costs thousands of rows.
        Every statement reads the same database snapshot (`read_snapshot`); what was read is
        remembered only once the whole read succeeded, so after a failed refresh the next one
        reads again. Blocks on the database; raises SQLAlchemy errors when it is unreachable."""
        with read_snapshot(self.engine) as conn:
            revision = plans_revision(conn)
            applied = (int(conn.execute(_APPLIED_OFFSETS_SUM).scalar_one()), backfill_clock(conn))
            if (
                revision == self._revision
                and applied == self._applied
                and kpi_days(self._plans, taken_at) == self._days
            ):
                return None
            plans = self._plans
            if revision != self._revision:
                plans = tuple(load_active_plans(conn))
            days = kpi_days(plans, taken_at)
            kpis = read_kpis(conn, plans, days, self.checkpoint)
            rows = conn.execute(_SHOP_EVENT_TOTALS).all()
            ids = [kr_id for plan in plans for kr_id in plan.key_result_ids.values()]
            states = read_series_states(conn, ids, self.checkpoint)
            backfilling = backfilling_key_results(conn)
            remaining = remaining_messages(conn)
        # The transaction ended cleanly: only now is this what the exporter serves.
        self._revision, self._plans, self._applied, self._days = revision, plans, applied, days
        shop_events = tuple((s, t, int(n)) for s, t, n in rows)
        return ProgressSnapshot(taken_at, plans, states, shop_events, backfilling, kpis, remaining)

    def forget(self) -> None:
        """The last snapshot was not served after all (rendering it failed): read the next one
        in full instead of answering None."""
        self._applied = None
