"""okrflow's BatchSink: decode -> guard -> count -> database -> dead letters, per batch.

See okrflow.ingest.batch_step for the order in which these steps run and commit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from operator import attrgetter

from sqlalchemy.exc import DBAPIError

from okrflow.counting.decode import DecodedBatch, Delivered, MessageLike, Rejected, decode_batch
from okrflow.events import InvalidEvent
from okrflow.failures import one_line
from okrflow.ingest.batch_writer import BatchWriter
from okrflow.ingest.clock import SYSTEM_CLOCK, Clock
from okrflow.ingest.committed import report_committed
from okrflow.ingest.deadletters import DeadLetterWriter
from okrflow.ingest.guard import InvalidShareGuard, source_name
from okrflow.ingest.helper_client import CountingHelper
from okrflow.ingest.housekeeping import Housekeeping
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.ingest.plan_cache import LoadedPlans
from okrflow.ingest.prepared import PendingBatch, PreparedBatch, WrittenBatch, where
from okrflow.ingest.refused import find_rejected
from okrflow.ingest.transaction import (
    CountsDisagree,
    precount,
)
from okrflow.ops.database_retry import Pause, is_connection_error, retry_while_unreachable
from okrflow.settings import Settings

logger = logging.getLogger(__name__)
_key = attrgetter("key")  # a message's source for the invalid-share guard

# Smaller batches are counted in the worker: at a few hundred events the helper's round trip
# buys nothing, and a worker that only ever sees small batches never starts a helper.
HELPER_MIN_RECORDS = 500


class WorkerStopping(RuntimeError):
    """The worker is stopping while the database is unreachable: the batch is abandoned
    (nothing committed, it is consumed again on restart)."""


@dataclass
class _Writing:
    """A batch being written: as it is now (recounted, refused events left out), and the
    events the database refused so far."""

    prepared: PreparedBatch
    refused: list[tuple[Delivered, InvalidEvent]] = field(default_factory=list)


class OkrflowSink:
    """The BatchSink of okrflow's worker (see okrflow.ingest.batch_step)."""

    def __init__(
        self, settings: Settings, writer: BatchWriter, metrics: PipelineMetrics,
        dead_letters: DeadLetterWriter, *, housekeeping: Housekeeping | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:  # fmt: skip
        """`writer`: the database side (okrflow.ingest.batch_writer); `housekeeping`: the
        freeze and prunes between batches (None: none); `clock`: the time it reads."""
        self.topic = settings.events_topic
        self.settings = settings
        self.writer = writer
        self.clock = clock
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.guard = InvalidShareGuard(
            settings.max_invalid_share, settings.invalid_window, settings.invalid_min_messages
        )
        self.helper = CountingHelper(settings, clock) if settings.worker_counting_process else None
        self.stopping = threading.Event()
        # Every database write of a batch, from write to commit, on this one thread (a
        # transaction stays on the thread that opened it; SQLite insists).
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="okrflow-db")
        self.housekeeping = housekeeping

    async def prepare(self, records: Sequence[MessageLike]) -> PreparedBatch:
        """Decode, check the invalid share, count against the plans in force (the plan
        revision is read from the database in a thread; decoding and counting run in the
        helper process, or here on the event loop without one)."""
        closed_at = self.clock.time()
        loaded = await asyncio.to_thread(self.writer.refresh_plans)
        started = self.clock.monotonic()
        helper = self.helper if len(records) >= HELPER_MIN_RECORDS else None
        counted = await helper.count(records, loaded) if helper is not None else None
        if counted is not None:
            rejected = [*counted.decode_rejected, *counted.value_rejected]
            prepared = PreparedBatch(records, counted.next_offsets, [], counted=counted)
            prepared.dead_letters.extend(prepared.rejected(rejected))
        else:
            prepared = self._counted_here(records, loaded)
        self._check_invalid_share(records, prepared.dead_letters)
        self.metrics.prepare_seconds.observe(self.clock.monotonic() - started)
        return replace(prepared, closed_at=closed_at, prepared_at=self.clock.time())

    def _check_invalid_share(
        self, records: Sequence[MessageLike], invalid: Sequence[Rejected]
    ) -> None:
        """The invalid-share guard, per source (okrflow.ingest.guard): logs the quarantines
        that begin or end; raises InvalidShareExceeded to stop the worker."""
        changes = self.guard.check(Counter(map(_key, records)), Counter(map(_key, invalid)))
        for change in changes:
            name = source_name(change.source)
            if change.begins:
                self.metrics.quarantines.inc()
                logger.warning(
                    "quarantined %s: %d of its last %d messages are invalid (more than %.0f%%); "
                    "they go to the dead letters, and every other shop counts on",
                    name, change.invalid, change.messages, 100 * self.guard.max_share,
                )  # fmt: skip
            else:
                logger.info("%s is no longer quarantined", name)
        self.metrics.quarantined.set(len(self.guard.quarantined))

    def _decode(self, records: Sequence[MessageLike]) -> DecodedBatch:
        return decode_batch(self.topic, records, self.settings.max_event_bytes)

    async def write(self, prepared: PreparedBatch) -> PendingBatch:
        """Step 1: the batch's transaction, written and left open on the database thread
        (retried while the database is unreachable; events the database refuses are found
        by bisection and become dead letters)."""
        # Shielded: a SIGTERM arriving mid-transaction lets the transaction finish.
        loop = asyncio.get_running_loop()
        return await asyncio.shield(
            loop.run_in_executor(self._db, self._write_until_done, prepared)
        )

    async def dead_letter(self, pending: PendingBatch) -> None:
        """Step 2: produce the batch's dead letters (those not already in the topic)."""
        await self.dead_letters.write(pending.dead_letters)

    async def commit(self, pending: PendingBatch) -> Mapping[int, int]:
        """Step 3: commit the transaction; returns the offsets to commit to Kafka."""
        loop = asyncio.get_running_loop()
        await asyncio.shield(loop.run_in_executor(self._db, self.writer.commit, pending.written))
        self.metrics.commit_seconds.observe(self.clock.monotonic() - pending.started)
        report_committed(self.metrics, self.topic, pending, self.clock.time())
        if self.housekeeping is not None:
            await loop.run_in_executor(self._db, self.housekeeping.after_commit)
        return pending.prepared.next_offsets

    async def abort(self, pending: PendingBatch) -> None:
        await asyncio.get_running_loop().run_in_executor(self._db, pending.written.rollback)

    def _counted_here(self, records: Sequence[MessageLike], loaded: LoadedPlans) -> PreparedBatch:
        """The batch decoded and counted by the worker, with the dead letters of its own
        decoding: without a helper (on the event loop), or when the helper's counts did not
        do (on the database thread)."""
        batch = self._decode(records)
        precounted = precount(batch, loaded)
        prepared = PreparedBatch(
            records, batch.next_offsets, list(batch.rejected), batch=batch,
            precounted=precounted,
        )  # fmt: skip
        prepared.dead_letters.extend(prepared.rejected(where(precounted.rejected)))
        return prepared

    def _write(self, prepared: PreparedBatch) -> WrittenBatch:
        records = prepared.records
        return self.writer.write(prepared, self.clock.now(), lambda: self._decode(records))

    def _write_until_done(self, prepared: PreparedBatch) -> PendingBatch:
        """Write the batch, retrying with backoff while the database is unreachable
        (okrflow.ops.database_retry: 0.5 s doubling to 30 s, until the worker stops): an
        unapplied batch is never acknowledged, so nothing is lost or counted twice."""
        started, started_at = self.clock.monotonic(), self.clock.time()
        writing = _Writing(prepared)
        written = retry_while_unreachable(
            lambda: self._write_isolating(writing), longest_pause=30.0, pause=self._pause
        )
        prepared = writing.prepared
        letters = [
            *prepared.dead_letters,
            *prepared.rejected(where(writing.refused)),
            *prepared.rejected(where(written.result.rejected)),
        ]
        # A batch counted again in its transaction finds the precounted rejections again.
        unique = sorted(
            {(r.partition, r.offset): r for r in letters}.values(),
            key=lambda r: (r.partition, r.offset),
        )
        return PendingBatch(prepared, written, unique, started, started_at)

    def _write_isolating(self, writing: _Writing) -> WrittenBatch:
        """Write `writing.prepared`; a batch the worker must count itself is counted again,
        and events the database refuses are found and left out (`writing.refused`). Raises
        only when the database is unreachable (retried) or for a fault no event causes."""
        while True:
            try:
                return self._write(writing.prepared)
            except CountsDisagree as exc:
                logger.warning("%s; the worker counts this batch itself", exc)
                writing.prepared = self._counted_here(writing.prepared.records, self.writer.loaded)
            except DBAPIError as exc:
                if is_connection_error(exc):
                    raise
                self._leave_out_refused(writing, exc)

    def _leave_out_refused(self, writing: _Writing, error: DBAPIError) -> None:
        """Bisect the batch the database refused with `error`, and leave out what it refuses."""
        prepared = writing.prepared
        if prepared.batch is None:  # counted by the helper: the worker's own
            prepared = self._counted_here(prepared.records, self.writer.loaded)
        batch = prepared.batch
        assert batch is not None
        now = self.clock.now()
        found = find_rejected(batch, error, lambda part: self.writer.trial(part, now))
        for delivered, invalid in found:
            logger.warning(
                "database refused the event at %s[%d]@%d: %s",
                self.topic, delivered.partition, delivered.offset, invalid.error,
            )  # fmt: skip
        writing.refused.extend(found)
        drop = {(d.partition, d.offset) for d, _ in found}
        kept = [d for d in batch.events if (d.partition, d.offset) not in drop]
        # Counted again in the transaction (any precount included them).
        writing.prepared = replace(prepared, batch=replace(batch, events=kept), precounted=None)

    def _pause(self, pause: Pause) -> None:
        """Between two tries of a batch while the database is unreachable."""
        self.metrics.database_retries.inc()
        logger.warning(
            "database unavailable (%s); retrying in %.1fs",
            one_line(pause.error), pause.seconds,
        )  # fmt: skip
        if self.clock.wait(self.stopping, pause.seconds):
            raise WorkerStopping("stopping while the database is unavailable") from pause.error

    async def maybe_freeze(self) -> None:
        """Every minute, freeze the baselines from data that are due (okrflow.plans.freeze).
        Call only while no batch transaction of this worker is open (after a commit, or
        when idle): the freeze takes the plan clock, which an open batch holds."""
        if self.housekeeping is not None and self.housekeeping.freeze_due():
            await asyncio.get_running_loop().run_in_executor(self._db, self.housekeeping.freeze)

    def observe_lag(
        self, highwater: Callable[[int], int | None], offsets: Mapping[int, int]
    ) -> None:
        """Messages behind each partition's end after the batch that ends at `offsets`."""
        for partition, next_offset in offsets.items():
            end = highwater(partition)
            if end is not None:
                self.metrics.lag.labels(str(partition)).set(max(0, end - next_offset))
