"""The backfill runner: take a job, scan each partition up to its cut, finish the job.

`apply` records, with each key result that starts mid-period, a job and its cut: every
partition's applied offset at that moment (okrflow.store.backfill). The live worker counts the
key result from the cut on; the runner here reads each partition from its start up to the cut
with a plain consumer (no group, no committed offsets: progress lives in the database), and
counts chunk by chunk (okrflow.backfill.chunk). A runner holds its job by a lease on the
database's clock; a killed runner's job is taken over when the lease runs out, and resumes at
the last committed chunk. docs/design/history-and-backfill.md 1.4 is the design;
docs/operations.md says how to run it.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy import Engine

from okrflow.backfill.chunk import ChunkResult, JobIndex, count_chunk
from okrflow.backfill.kafka_reads import dead_lettered_offsets, plain_consumer, topic_partitions
from okrflow.backfill.progress import JobOutcome, JobProgress, ProgressView
from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.kafkaclient import start_client
from okrflow.settings import Settings
from okrflow.store.backfill import (
    JobRow,
    add_job_counts,
    add_uncut_partitions,
    advance_partitions,
    db_now,
    delete_seen,
    freeze_partitions,
    lock_job,
    measures_waiting_for_baseline,
    read_partitions,
    take_job,
    update_job,
)

logger = logging.getLogger(__name__)

_SEEN_DELETE_ROWS = 10_000


@dataclass
class Runner:
    """Takes jobs and runs them, one at a time."""

    settings: Settings
    engine: Engine
    view: ProgressView = field(default_factory=ProgressView)
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )

    def take(self, job_id: int) -> bool:
        lease = timedelta(seconds=self.settings.backfill_lease_seconds)
        with self.engine.begin() as conn:
            now = db_now(conn)
            return take_job(conn, job_id, self.owner, now, now + lease)

    async def run(self, job: JobRow) -> JobProgress:
        """Scan a job this runner has taken, up to its cut, then finish it."""
        progress = JobProgress(job.id, job.shop)
        topic = self.settings.events_topic
        skip = await dead_lettered_offsets(self.settings)
        consumer = plain_consumer(self.settings)
        try:
            await start_client(consumer, self.settings)
            outcome = await self._scan(job, consumer, topic, skip, progress)
            if outcome is None:
                # Every partition's end, also of those without a cut row (nothing of them was
                # applied at the apply; or no cut at all): the freeze waits for all of them.
                scanned = set(self._scans(job.id))
                partitions = sorted(scanned | set(await topic_partitions(consumer, topic)))
                if not partitions:  # else the job could never be finished: --wait would spin
                    raise OperatorError(
                        ExitCode.KAFKA_LAYOUT,
                        f"{topic} does not exist: backfill job {job.id} needs its log end",
                    )
                tps = [TopicPartition(topic, p) for p in partitions]
                ends = await consumer.end_offsets(tps) if tps else {}
                outcome = self._finish(job.id, {tp.partition: int(o) for tp, o in ends.items()})
        finally:
            await consumer.stop()
        if outcome in ("cancelled", "failed"):
            self._forget_seen(job.id)
        progress.outcome = outcome
        self.view.finished(progress)
        return progress

    def _scans(self, job_id: int) -> dict[int, tuple[int, int | None]]:
        with self.engine.connect() as conn:
            return {
                p: (s.cut_offset, s.next_offset) for p, s in read_partitions(conn, job_id).items()
            }

    async def _scan(
        self, job: JobRow, consumer: AIOKafkaConsumer, topic: str,
        skip: Mapping[int, frozenset[int]], progress: JobProgress,
    ) -> JobOutcome | None:  # fmt: skip
        scans = self._scans(job.id)
        tps = {p: TopicPartition(topic, p) for p in scans}
        if not tps:
            return None
        consumer.assign(list(tps.values()))
        starts = await consumer.beginning_offsets(list(tps.values()))
        positions: dict[int, int] = {}
        skipped_ahead: dict[int, int] = {}
        for p, (cut, next_offset) in scans.items():
            start = int(starts[tps[p]])
            position = start if next_offset is None else max(next_offset, start)
            if next_offset is not None and next_offset < min(start, cut):
                lost = min(start, cut) - next_offset
                progress.lost += lost
                logger.error(
                    "backfill job %d, %s partition %d: offsets %d to %d were deleted by "
                    "retention before they were counted; %d message(s) lost to this job",
                    job.id, topic, p, next_offset, min(start, cut) - 1, lost,
                )  # fmt: skip
            if position >= cut:
                if (next_offset or 0) < cut:
                    skipped_ahead[p] = cut
            else:
                positions[p] = position
                if next_offset is not None and next_offset < start:
                    skipped_ahead[p] = start
        if (skipped_ahead or progress.lost) and not self._record_gaps(
            job.id, skipped_ahead, progress.lost
        ):
            return "fenced"
        progress.total = sum(scans[p][0] - pos for p, pos in positions.items())
        self.view.started(progress)
        for p, position in positions.items():
            consumer.seek(tps[p], position)
        index = JobIndex()
        remaining = set(positions)
        while remaining:
            fetched = await consumer.getmany(
                *(tps[p] for p in sorted(remaining)), timeout_ms=1000,
                max_records=self.settings.backfill_chunk_size,
            )  # fmt: skip
            records: list[ConsumerRecord[bytes, bytes]] = [
                r for tp in sorted(fetched, key=lambda t: t.partition) for r in fetched[tp]
            ]
            if not records:
                error = await self._log_ends_before_cut(consumer, tps, remaining, scans)
                if error is not None:
                    self._fail(job.id, error)
                    logger.error("backfill job %d failed: %s", job.id, error)
                    return "failed"
            ends: dict[int, int] = {}
            for p in remaining:
                position = await consumer.position(tps[p])
                ends[p] = max([position, *(r.offset + 1 for r in fetched.get(tps[p], ()))])
            result = self._count(job.id, topic, records, ends, skip, index)
            if result.state != "counted":
                return result.state
            progress.scanned += result.scanned
            progress.counted += result.counted
            progress.skipped += result.skipped
            self.view.advanced(progress)
            for p in list(remaining):
                if ends[p] >= scans[p][0]:
                    remaining.discard(p)
                    consumer.pause(tps[p])
        return None

    async def _log_ends_before_cut(
        self, consumer: AIOKafkaConsumer, tps: Mapping[int, TopicPartition],
        remaining: set[int], scans: Mapping[int, tuple[int, int | None]],
    ) -> str | None:  # fmt: skip
        """Why the scan cannot reach the cut: a partition read to its end that ends before
        the cut is not the log the cut was taken in (deleted and created again)."""
        ends = await consumer.end_offsets([tps[p] for p in remaining])
        short = []
        for p in sorted(remaining):
            end = int(ends[tps[p]])
            if end < scans[p][0] and await consumer.position(tps[p]) >= end:
                short.append(f"partition {p} ends at {end}, cut at {scans[p][0]}")
        if not short:
            return None
        return (
            f"the events topic is shorter than when the job was created ({', '.join(short)}): "
            "was it deleted and created again?"
        )

    def _fail(self, job_id: int, error: str) -> None:
        with self.engine.begin() as conn:
            job = lock_job(conn, job_id)
            if job is not None and job.owner == self.owner:
                update_job(
                    conn, job_id, state="failed", error=error, finished_at=db_now(conn),
                    owner=None, lease_until=None,
                )  # fmt: skip

    def _record_gaps(self, job_id: int, ahead: Mapping[int, int], lost: int) -> bool:
        with self.engine.begin() as conn:
            job = lock_job(conn, job_id)
            if job is None or job.owner != self.owner or job.state != "running":
                return False
            advance_partitions(conn, job_id, ahead)
            add_job_counts(conn, job_id, lost=lost)
        return True

    def _count(
        self, job_id: int, topic: str, records: Sequence[ConsumerRecord[bytes, bytes]],
        ends: Mapping[int, int], skip: Mapping[int, frozenset[int]], index: JobIndex,
    ) -> ChunkResult:  # fmt: skip
        """One chunk (okrflow.backfill.chunk.count_chunk: retried, bisected)."""
        return count_chunk(
            self.engine, job_id, self.owner, topic, records, ends, skip, index,
            self.settings.backfill_lease_seconds, self.settings.startup_deadline_seconds,
        )  # fmt: skip

    def _finish(self, job_id: int, log_ends: Mapping[int, int]) -> JobOutcome:
        """Done when every partition is scanned to its cut: record the log ends (a measured
        baseline is frozen once the live worker has passed them), then mark the job done
        unless a key result still waits for its baseline."""
        with self.engine.begin() as conn:
            job = lock_job(conn, job_id)
            if job is None or job.owner != self.owner or job.state != "running":
                return "fenced"
            scans = read_partitions(conn, job_id)
            behind = [p for p, s in scans.items() if (s.next_offset or 0) < s.cut_offset]
            if behind:
                raise RuntimeError(f"backfill job {job_id}: partitions {behind} not scanned")
            freeze_partitions(conn, job_id, {p: log_ends.get(p, 0) for p in scans})
            # Partitions without a cut (nothing of them applied at the apply): nothing to
            # scan, but the live worker must count them to their end before a freeze too.
            add_uncut_partitions(
                conn, job_id, {p: e for p, e in log_ends.items() if p not in scans}
            )
            now = db_now(conn)
            waiting = measures_waiting_for_baseline(conn, job_id) > 0
            if waiting:
                update_job(conn, job_id, owner=None, lease_until=None)
            else:
                update_job(
                    conn, job_id, state="done", finished_at=now, owner=None, lease_until=None
                )
        self._forget_seen(job_id, ended=False)
        return "waiting" if waiting else "done"

    def _forget_seen(self, job_id: int, ended: bool = True) -> None:
        """The job scans no more (scanned to its cut, or `ended`: cancelled or failed, checked
        under its lock, as another runner may hold it): its dedupe set is needed no more (up
        to ~100 bytes an event of the shop)."""
        while True:  # bounded by its size
            with self.engine.begin() as conn:
                job = lock_job(conn, job_id)
                if ended and (job is None or job.state not in ("cancelled", "failed")):
                    return
                if delete_seen(conn, job_id, _SEEN_DELETE_ROWS) < _SEEN_DELETE_ROWS:
                    return
