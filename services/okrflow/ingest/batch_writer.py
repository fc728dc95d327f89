"""The sink's database side, behind one seam: the plans in force, a batch's transaction, its
trials (rolled back) and its commit. `DatabaseWriter` is the worker's; a unit test gives the
sink a fake one (tests/unit/ingest/test_sink.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from okrflow.counting.decode import DecodedBatch
from okrflow.ingest.known_distinct import KnownDistinct
from okrflow.ingest.plan_cache import LoadedPlans, PlanCache
from okrflow.ingest.prepared import PreparedBatch, WrittenBatch
from okrflow.ingest.transaction import OpenBatch, apply_batch, write_batch, write_counted


class BatchWriter(Protocol):
    """What the sink asks of the database. All but `refresh_plans` run on the sink's one
    database thread (a transaction stays on the thread that opened it)."""

    @property
    def loaded(self) -> LoadedPlans:
        """The plans last read (no database access)."""
        ...

    def refresh_plans(self) -> LoadedPlans:
        """The plans in force, read again when their revision moved."""
        ...

    def write(
        self, prepared: PreparedBatch, now: datetime, decode: Callable[[], DecodedBatch]
    ) -> WrittenBatch:
        """Step 1: the batch's transaction, left open (`decode`: the batch decoded by the
        worker, for a batch the helper counted whose counts do not hold). Raises the
        database's errors (then nothing is written)."""
        ...

    def trial(self, batch: DecodedBatch, now: datetime) -> None:
        """Write `batch` and roll it back, raising what the database says (bisection)."""
        ...

    def commit(self, written: WrittenBatch) -> None:
        """Step 3: commit the transaction."""
        ...


class DatabaseWriter:
    """The worker's BatchWriter: okrflow.ingest.transaction on `engine`; plans read with
    `reader` (off SQLite's write lock)."""

    def __init__(self, engine: Engine, topic: str, reader: Engine | None = None) -> None:
        self.engine = engine
        self.topic = topic
        self.reader = reader or engine
        self.plans = PlanCache()
        self.known = KnownDistinct()  # used and taught on the database thread only

    @property
    def loaded(self) -> LoadedPlans:
        return self.plans.loaded

    def refresh_plans(self) -> LoadedPlans:
        with self.reader.connect() as conn:
            return self.plans.refresh(conn)

    def write(
        self, prepared: PreparedBatch, now: datetime, decode: Callable[[], DecodedBatch]
    ) -> OpenBatch:
        if prepared.counted is not None:
            return write_counted(
                self.engine, prepared.counted, self.topic, decode, now, self.plans, self.known
            )
        assert prepared.batch is not None
        return write_batch(
            self.engine, prepared.batch, now, self.plans, prepared.precounted, self.known
        )

    def trial(self, batch: DecodedBatch, now: datetime) -> None:
        apply_batch(self.engine, batch, now, self.plans, commit=False)

    def commit(self, written: WrittenBatch) -> None:
        written.commit()
        self.known.learn(written.result.revision, written.result.deltas)
