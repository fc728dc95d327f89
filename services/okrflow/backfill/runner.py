"""`okrflow backfill`: count what a new key result missed, from the events topic, exactly once.

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
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from okrflow.backfill.chunk import (
    ChunkResult,
    JobIndex,
    apply_chunk,
    log_refused,
    refused_by_database,
)
from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.ingest.deadletters import (
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_TOPIC,
)  # fmt: skip
from okrflow.ingest.offsets import RESET_REASON
from okrflow.ingest.transaction import is_connection_error
from okrflow.kafkaclient import client_kwargs, start_client
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

JobOutcome = Literal["done", "waiting", "cancelled", "fenced", "failed"]
_SEEN_DELETE_ROWS = 10_000


@dataclass
class JobProgress:
    """What a running job has done so far (for the progress bar and the closing line)."""

    job_id: int
    shop: str
    total: int = 0  # messages below the cut to read, from where this run started
    scanned: int = 0
    counted: int = 0
    skipped: int = 0
    lost: int = 0
    outcome: JobOutcome | None = None


class ProgressView:
    """Where progress goes: a no-op here; the command shows a bar or log lines."""

    def started(self, job: JobProgress) -> None:
        pass

    def advanced(self, job: JobProgress) -> None:
        pass

    def finished(self, job: JobProgress) -> None:
        pass


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
        # A position that retention deleted meanwhile resumes at the log's new start
        # (aiokafka's default, "latest", would skip every message up to the cut).
        consumer = AIOKafkaConsumer(
            **client_kwargs(self.settings), group_id=None, enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms, auto_offset_reset="earliest",
        )  # fmt: skip
        try:
            await start_client(consumer, self.settings)
            outcome = await self._scan(job, consumer, topic, skip, progress)
            if outcome is None:
                # Every partition's end, also of those without a cut row (nothing of them was
                # applied at the apply; or no cut at all): the freeze waits for all of them.
                scanned = set(self._scans(job.id))
                partitions = sorted(scanned | set(await _partitions(consumer, topic)))
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
        """One chunk, retried while the database is unreachable (up to the start-up deadline);
        events the database refuses are found by bisection and skipped by the job."""
        lease = self.settings.backfill_lease_seconds

        def chunk(excluded: frozenset[tuple[int, int]], commit: bool = True) -> ChunkResult:
            return apply_chunk(
                self.engine, job_id, self.owner, topic, records, ends, skip, index, lease,
                excluded=excluded, commit=commit,
            )  # fmt: skip

        def trial(excluded: frozenset[tuple[int, int]]) -> DBAPIError | None:
            try:
                chunk(excluded, commit=False)
            except DBAPIError as exc:
                if is_connection_error(exc):
                    raise
                return exc
            return None

        def attempt() -> ChunkResult:
            try:
                return chunk(frozenset())
            except DBAPIError as exc:
                if is_connection_error(exc):  # unreachable: retried, not bisected
                    raise
                refused = refused_by_database(
                    trial, [(r.partition, r.offset) for r in records], exc
                )
                log_refused(job_id, refused, exc)
                return chunk(refused)

        return _with_database_retries(attempt, self.settings.startup_deadline_seconds)

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


def _with_database_retries(attempt: Callable[[], ChunkResult], deadline: float) -> ChunkResult:
    started = time.monotonic()

    def unreachable(exc: BaseException) -> bool:
        return isinstance(exc, DBAPIError) and is_connection_error(exc)

    def warn(state: object) -> None:
        logger.warning(
            "backfill: the database is unreachable; retrying (%.0f s of %.0f s)",
            time.monotonic() - started, deadline,
        )  # fmt: skip

    try:
        for try_ in Retrying(
            stop=stop_after_delay(deadline), wait=wait_exponential(0.5, max=5),
            retry=retry_if_exception(unreachable), reraise=True, before_sleep=warn,
        ):  # fmt: skip
            with try_:
                return attempt()
    except DBAPIError as exc:
        if not is_connection_error(exc):
            raise
        detail = str(exc.orig or exc).strip().splitlines()[0]
        raise OperatorError(
            ExitCode.DATABASE_UNREACHABLE,
            f"database unreachable: {detail} (gave up after {deadline:.0f} s; the job resumes "
            "where it stopped when okrflow backfill runs again)",
        ) from None
    raise AssertionError("unreachable: tenacity returns or raises")


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    await consumer._client.force_metadata_update()
    return sorted(consumer.partitions_for_topic(topic) or ())


async def dead_lettered_offsets(settings: Settings) -> dict[int, frozenset[int]]:
    """Source partition -> offsets of the events topic the worker dead-lettered (the DLQ's
    partition p mirrors the source's p; records before a `reset` marker name offsets of a log
    that is gone). Read whole on every run: it holds only refused messages."""
    consumer = AIOKafkaConsumer(
        **client_kwargs(settings), group_id=None, enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms, auto_offset_reset="earliest",
    )  # fmt: skip
    found: dict[int, set[int]] = {}
    try:
        await start_client(consumer, settings)
        await consumer._client.force_metadata_update()
        partitions = sorted(consumer.partitions_for_topic(settings.dlq_topic) or ())
        tps = [TopicPartition(settings.dlq_topic, p) for p in partitions]
        if not tps:
            return {}
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        source = settings.events_topic.encode()
        while remaining:
            for p in list(remaining):
                if await consumer.position(p) >= ends[p]:
                    remaining.discard(p)
            if not remaining:
                break
            fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=10_000)
            for tp, records in fetched.items():
                offsets = found.setdefault(tp.partition, set())
                for record in records:
                    headers = dict(record.headers or ())
                    if headers.get(HEADER_REASON) == RESET_REASON.encode():
                        offsets.clear()
                    elif headers.get(HEADER_TOPIC) == source and HEADER_OFFSET in headers:
                        partition = int(headers.get(HEADER_PARTITION, b"%d" % tp.partition))
                        found.setdefault(partition, set()).add(int(headers[HEADER_OFFSET]))
    finally:
        await consumer.stop()
    return {p: frozenset(o) for p, o in found.items()}


def kafka_failure(exc: KafkaError | OSError, settings: Settings) -> OperatorError:
    return OperatorError(
        ExitCode.KAFKA_UNREACHABLE,
        f"cannot read {settings.events_topic} from Kafka at {settings.kafka_bootstrap}: "
        f"{str(exc).strip() or type(exc).__name__}",
    )
