"""okrflow's BatchSink: decode -> guard -> count -> database -> dead letters, per batch.

See okrflow.ingest.batching for the order in which these steps run and commit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from okrflow.events import InvalidEvent
from okrflow.ingest.batch import DecodedBatch, Delivered, MessageLike, Rejected, decode_batch
from okrflow.ingest.batch import rejected_message as _rejected_message
from okrflow.ingest.batching import AppliedBatch
from okrflow.ingest.deadletters import DeadLetterWriter
from okrflow.ingest.guard import InvalidShareGuard
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.ingest.transaction import (
    BatchResult,
    LoadedPlans,
    PlanCache,
    Precounted,
    apply_batch,
    find_rejected_by_database,
    is_connection_error,
    precount,
)
from okrflow.settings import Settings
from okrflow.store.batches import prune_seen_events

logger = logging.getLogger(__name__)


class WorkerStopping(RuntimeError):
    """The worker is stopping while the database is unreachable: the batch is abandoned
    (nothing committed, it is consumed again on restart)."""


class RejectedByDatabase(Exception):
    """Events of a batch that the database refuses for their values (found by bisection)."""

    def __init__(self, found: list[tuple[Delivered, InvalidEvent]]) -> None:
        super().__init__(f"{len(found)} event(s) refused by the database")
        self.found = found


@dataclass(frozen=True)
class PreparedBatch:
    batch: DecodedBatch
    precounted: Precounted
    records: Sequence[MessageLike]
    dead_letters: list[Rejected]  # decode failures and events refused for their values

    def rejected(self, found: Sequence[tuple[Delivered, InvalidEvent]]) -> list[Rejected]:
        """Dead letters for events found invalid after decoding, from their original records."""
        wanted = {(d.partition, d.offset): invalid for d, invalid in found}
        return [
            _rejected_message(r, wanted[r.partition, r.offset])
            for r in self.records
            if (r.partition, r.offset) in wanted
        ]


class OkrflowSink:
    """The BatchSink of okrflow's worker (see okrflow.ingest.batching)."""

    def __init__(
        self, settings: Settings, engine: Engine, metrics: PipelineMetrics,
        dead_letters: DeadLetterWriter, reader: Engine | None = None,
    ) -> None:  # fmt: skip
        self.reader = reader or engine  # plan and offset reads, off SQLite's write lock
        self.topic = settings.events_topic
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.guard = InvalidShareGuard(
            settings.max_invalid_share, settings.invalid_window, settings.invalid_min_messages
        )
        self.plans = PlanCache()
        self.stopping = threading.Event()
        self._last_prune = 0.0

    async def prepare(self, records: Sequence[MessageLike]) -> PreparedBatch:
        """Decode, check the invalid share, count against the plans in force (the plan
        revision is read from the database in a thread; the rest is CPU on the event loop)."""
        loaded = await asyncio.to_thread(self._refresh_plans)
        started = time.perf_counter()
        batch = decode_batch(self.topic, records, self.settings.max_event_bytes)
        precounted = precount(batch, loaded)
        self.guard.check(len(batch), len(batch.rejected) + len(precounted.rejected))
        prepared = PreparedBatch(batch, precounted, records, list(batch.rejected))
        prepared.dead_letters.extend(prepared.rejected(precounted.rejected))
        self.metrics.prepare_seconds.observe(time.perf_counter() - started)
        return prepared

    def _refresh_plans(self) -> LoadedPlans:
        with self.reader.connect() as conn:
            return self.plans.refresh(conn)

    async def apply(self, prepared: PreparedBatch) -> AppliedBatch:
        """Apply the batch in one transaction (in a thread, retried while the database is
        unreachable). Events the database refuses are found by bisection and dead-lettered
        before the rest of the batch is applied (okrflow.ingest.batching, step 1)."""
        dead_letters = list(prepared.dead_letters)
        while True:
            try:
                # Shielded: a SIGTERM arriving mid-transaction lets the transaction finish.
                result = await asyncio.shield(asyncio.to_thread(self._apply_until_done, prepared))
                break
            except RejectedByDatabase as refused:
                for delivered, invalid in refused.found:
                    logger.warning(
                        "database refused the event at %s[%d]@%d: %s",
                        self.topic, delivered.partition, delivered.offset, invalid.error,
                    )  # fmt: skip
                dead_letters.extend(prepared.rejected(refused.found))
                await self.dead_letters.write(dead_letters)
                drop = {(d.partition, d.offset) for d, _ in refused.found}
                batch = prepared.batch
                kept = [d for d in batch.events if (d.partition, d.offset) not in drop]
                prepared = replace(
                    prepared,
                    batch=replace(batch, events=kept),
                    precounted=replace(
                        prepared.precounted, revision=-2
                    ),  # recount in the transaction
                )
        dead_letters.extend(prepared.rejected(result.rejected))
        self._record(prepared.batch, result, dead_letters, prepared.records)
        return AppliedBatch(prepared.batch.next_offsets, dead_letters)

    async def dead_letter(self, applied: AppliedBatch) -> None:
        """Produce the batch's dead letters (those not already in the topic) and wait."""
        await self.dead_letters.write(applied.dead_letters)

    def _apply_until_done(self, prepared: PreparedBatch) -> BatchResult:
        """Apply the batch, retrying with backoff while the database is unreachable: an
        unapplied batch is never acknowledged, so nothing is lost or counted twice. Raises
        RejectedByDatabase for events whose values the database refuses."""
        delay = 0.5
        while True:
            try:
                started = time.perf_counter()
                result = apply_batch(
                    self.engine, prepared.batch, self._now(), self.plans, prepared.precounted
                )
                self.metrics.commit_seconds.observe(time.perf_counter() - started)
                self._maybe_prune()
                return result
            except DBAPIError as exc:
                if not is_connection_error(exc):
                    found = find_rejected_by_database(
                        self.engine, prepared.batch, self._now(), self.plans, exc
                    )
                    raise RejectedByDatabase(found) from exc
                self.metrics.database_retries.inc()
                logger.warning(
                    "database unavailable (%s); retrying in %.1fs",
                    str(exc.orig or exc).strip().splitlines()[0], delay,
                )  # fmt: skip
                if self.stopping.wait(delay):
                    raise WorkerStopping("stopping while the database is unavailable") from exc
                delay = min(delay * 2, 30.0)

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune >= self.settings.dedupe_prune_seconds:
            self._last_prune = now
            removed = prune_seen_events(
                self.engine, self._now(), self.settings.dedupe_window_seconds
            )
            if removed:
                logger.info("pruned %d event ids older than the dedupe window", removed)

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    def _record(
        self, batch: DecodedBatch, result: BatchResult, dead_letters: Sequence[Rejected],
        records: Sequence[MessageLike],
    ) -> None:  # fmt: skip
        m = self.metrics
        m.batch_size.observe(len(records))
        m.last_commit.set_to_current_time()
        m.events.labels("counted").inc(result.counted - result.unmatched)
        m.events.labels("unmatched").inc(result.unmatched)
        m.events.labels("duplicate").inc(result.duplicates)
        m.events.labels("replayed").inc(result.replayed)
        m.events.labels("invalid").inc(len(dead_letters))
        for rejected in dead_letters:
            m.dead_letters.labels(rejected.invalid.reason).inc()
            logger.warning(
                "invalid event at %s[%d]@%d: %s: %s",
                batch.topic, rejected.partition, rejected.offset,
                rejected.invalid.reason, rejected.invalid.error,
            )  # fmt: skip
        # Sampled (at most ~200 records a batch): observing every record costs ~1 µs each.
        committed_at = time.time() * 1000
        for record in records[:: max(1, len(records) // 200)]:
            timestamp = getattr(record, "timestamp", None)
            if timestamp is not None:
                m.commit_delay.observe(max(0.0, committed_at - timestamp) / 1000)

    def observe_lag(
        self, highwater: Callable[[int], int | None], offsets: Mapping[int, int]
    ) -> None:
        """Messages behind each partition's end after the batch that ends at `offsets`."""
        for partition, next_offset in offsets.items():
            end = highwater(partition)
            if end is not None:
                self.metrics.lag.labels(str(partition)).set(max(0, end - next_offset))
