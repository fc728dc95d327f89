"""One batch through the pipeline: decode -> guard -> dead letters -> database -> offsets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from faust.types import TP
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from okrflow.ingest.batch import DecodedBatch, decode_batch
from okrflow.ingest.consumer import Record
from okrflow.ingest.deadletters import DeadLetterWriter
from okrflow.ingest.guard import InvalidShareGuard
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.settings import Settings
from okrflow.store.batches import (
    BatchResult,
    PlanCache,
    Precounted,
    apply_batch,
    precount,
    prune_seen_events,
)

logger = logging.getLogger(__name__)


class WorkerStopping(RuntimeError):
    """The worker is stopping while the database is unreachable: the batch is abandoned
    (nothing committed, it is consumed again on restart)."""


@dataclass(frozen=True)
class PreparedBatch:
    batch: DecodedBatch
    precounted: Precounted
    samples: Sequence[Record]  # records whose produce-to-commit delay is observed


class OkrflowSink:
    """The BatchSink of okrflow's worker (see okrflow.ingest.consumer)."""

    def __init__(
        self, settings: Settings, engine: Engine, metrics: PipelineMetrics,
        dead_letters: DeadLetterWriter, generation: Callable[[], int],
    ) -> None:  # fmt: skip
        self.topic = settings.events_topic
        self.batch_size = settings.batch_size
        self.batch_seconds = settings.batch_seconds
        self.fetch_max_wait_ms = settings.fetch_max_wait_ms
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.guard = InvalidShareGuard(
            settings.max_invalid_share, settings.invalid_window, settings.invalid_min_messages
        )
        self.plans = PlanCache()
        self.stopping = threading.Event()
        self._generation = generation
        self._seen_generation = generation()
        self._last_prune = 0.0

    async def prepare(self, records: Sequence[Record]) -> PreparedBatch:
        """Decode, check the invalid share, write dead letters, pre-count (CPU, event loop)."""
        started = time.perf_counter()
        batch = decode_batch(self.topic, records, self.settings.max_event_bytes)
        self.guard.check(len(batch), len(batch.rejected))
        if self._generation() != self._seen_generation:
            self._seen_generation = self._generation()
            self.dead_letters.forget_watermarks()
        await self.dead_letters.write(batch.rejected)
        prepared = PreparedBatch(
            batch, precount(batch, self.plans), records[:: max(1, len(records) // 200)]
        )
        self.metrics.prepare_seconds.observe(time.perf_counter() - started)
        return prepared

    async def write(self, prepared: PreparedBatch, highwater: Callable[[TP], int]) -> dict[TP, int]:
        """Apply a prepared batch in one transaction (in a thread); returns offsets to commit."""
        batch = prepared.batch
        # Shielded: a SIGTERM arriving mid-transaction lets the transaction finish.
        result = await asyncio.shield(asyncio.to_thread(self._apply_until_done, prepared))
        self._record(batch, result)
        # Sampled (at most ~200 records a batch): observing every record costs ~1 µs each.
        committed_at = time.time() * 1000
        for record in prepared.samples:
            if record.timestamp is not None:
                self.metrics.commit_delay.observe(max(0.0, committed_at - record.timestamp) / 1000)
        offsets = {TP(self.topic, p): o for p, o in batch.next_offsets.items()}
        for tp, next_offset in offsets.items():
            # No highwater is known for a partition the consumer has not fetched metadata for.
            with contextlib.suppress(KeyError, AssertionError, TypeError):
                self.metrics.lag.labels(str(tp.partition)).set(max(0, highwater(tp) - next_offset))
        return offsets

    def _apply_until_done(self, prepared: PreparedBatch) -> BatchResult:
        """Apply the batch, retrying with backoff while the database is unreachable: an
        unapplied batch is never acknowledged, so nothing is lost or counted twice."""
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
            except (OperationalError, DBAPIError) as exc:
                if (
                    isinstance(exc, DBAPIError)
                    and not isinstance(exc, OperationalError)
                    and not exc.connection_invalidated
                ):
                    raise  # not a connection problem: a bug or a schema problem, stop loudly
                self.metrics.database_retries.inc()
                logger.warning(
                    "database unavailable (%s); retrying in %.1fs", exc.orig or exc, delay
                )
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

    def _record(self, batch: DecodedBatch, result: BatchResult) -> None:
        m = self.metrics
        m.batch_size.observe(len(batch))
        m.last_commit.set_to_current_time()
        m.events.labels("counted").inc(result.counted - result.unmatched)
        m.events.labels("unmatched").inc(result.unmatched)
        m.events.labels("duplicate").inc(result.duplicates)
        m.events.labels("replayed").inc(result.replayed)
        m.events.labels("invalid").inc(len(batch.rejected))
        for rejected in batch.rejected:
            m.dead_letters.labels(rejected.invalid.reason).inc()
            logger.warning(
                "invalid event at %s[%d]@%d: %s: %s",
                batch.topic, rejected.partition, rejected.offset,
                rejected.invalid.reason, rejected.invalid.error,
            )  # fmt: skip
