"""One backfill chunk = one transaction: the job's counting of messages below its cut.

The decisions of docs/design/history-and-backfill.md 1.4-1.7 live here; the SQL is
okrflow.store's. A chunk is read under the job's row lock (SQLite: the writer's lock) and
records how far the scan got in the same transaction as the counts, so a runner killed at any
point resumes exactly where the last commit left it, and two runners (or a paused one whose
lease was taken over) can never count a message twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from okrflow.counting.decode import MessageLike, decode_batch
from okrflow.counting.matching import MatchIndex
from okrflow.counting.series import series_deltas
from okrflow.counting.totals import first_occurrences
from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.failures import one_line
from okrflow.ops.database_retry import Pause, is_connection_error, retry_while_unreachable
from okrflow.plans.stored import load_active_plans
from okrflow.store.backfill import (
    add_job_counts,
    advance_partitions,
    claim_backfill_ids,
    db_now,
    job_measures,
    lock_job,
    read_partitions,
    update_job,
)
from okrflow.store.counters import write_series_deltas
from okrflow.store.plans import plans_revision
from okrflow.topics import DLQ_MAX_MESSAGE_BYTES

logger = logging.getLogger(__name__)

ChunkState = Literal["counted", "fenced", "cancelled"]


@dataclass(frozen=True)
class ChunkResult:
    state: ChunkState
    counted: int = 0  # events of the job's shop counted for the first time by this job
    skipped: int = 0  # events the job's key results cannot count (see apply_chunk)
    scanned: int = 0  # messages below the cut read by this chunk (not replayed)


class JobIndex:
    """The match index of a job's key results, rebuilt when the plan clock moved (a key
    result of the job may have been retired meanwhile)."""

    def __init__(self) -> None:
        self._key: tuple[int, tuple[int, ...]] | None = None
        self._index = MatchIndex([])

    def get(self, conn: Connection, measures: Sequence[int]) -> MatchIndex:
        key = (plans_revision(conn), tuple(sorted(measures)))
        if key != self._key:
            self._index = MatchIndex(load_active_plans(conn)).restricted_to(measures)
            self._key = key
        return self._index


def apply_chunk(
    engine: Engine, job_id: int, owner: str, topic: str, records: Sequence[MessageLike],
    ends: Mapping[int, int], skip: Mapping[int, frozenset[int]], index: JobIndex,
    lease_seconds: float, *, excluded: frozenset[tuple[int, int]] = frozenset(),
    commit: bool = True,
) -> ChunkResult:  # fmt: skip
    """Count `records` (fetched from `topic`, in offset order per partition) for the job, and
    advance its scan to `ends` (partition -> the offset after the last one fetched).

    Dropped: records below the job's `next_offset` (counted by an earlier chunk), at or above
    its cut (the live worker's), in `skip` (the dead letters: the worker refused them),
    undecodable ones, other shops' events, and `excluded` (partition, offset) pairs that the
    database refused. An event whose value is beyond +/-2^53 in a field a job's key result
    aggregates is skipped by the job (counted in `skipped_events`): it was valid for the live
    worker's plan, and a fresh run would dead-letter it.

    Returns `fenced` (nothing written) when the job is no longer this runner's, `cancelled`
    when none of its key results is in force any more. `commit=False` rolls back: a trial.
    """
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            result = _count(
                conn, job_id, owner, topic, records, ends, skip, index, lease_seconds, excluded
            )
            if commit:
                transaction.commit()
            else:
                transaction.rollback()
        except BaseException:
            transaction.rollback()
            raise
    return result


def _count(
    conn: Connection, job_id: int, owner: str, topic: str, records: Sequence[MessageLike],
    ends: Mapping[int, int], skip: Mapping[int, frozenset[int]], index: JobIndex,
    lease_seconds: float, excluded: frozenset[tuple[int, int]],
) -> ChunkResult:  # fmt: skip
    job = lock_job(conn, job_id)
    if job is None or job.state != "running" or job.owner != owner:
        return ChunkResult("fenced")
    measures = job_measures(conn, job_id)
    now = db_now(conn)
    if not measures:
        update_job(conn, job_id, state="cancelled", finished_at=now, owner=None, lease_until=None)
        return ChunkResult("cancelled")
    scans = read_partitions(conn, job_id)

    def wanted(m: MessageLike) -> bool:
        scan = scans.get(m.partition)
        if scan is None or m.offset >= scan.cut_offset:
            return False
        return scan.next_offset is None or m.offset >= scan.next_offset

    fresh = [m for m in records if wanted(m)]
    batch = decode_batch(topic, fresh, DLQ_MAX_MESSAGE_BYTES)
    of_shop = [
        d for d in batch.events
        if d.event.shop == job.shop and d.offset not in skip.get(d.partition, frozenset())
    ]  # fmt: skip
    events = [d for d in of_shop if (d.partition, d.offset) not in excluded]
    unique = first_occurrences(events)
    seen = claim_backfill_ids(conn, job_id, [(d.event.shop, d.event.id) for d in unique])
    new = [d for i, d in enumerate(unique) if i not in seen] if seen else unique
    counted = series_deltas(new, index.get(conn, measures))
    write_series_deltas(conn, counted.deltas, arrival="earlier")
    skipped = len(counted.rejected) + len(of_shop) - len(events)
    add_job_counts(conn, job_id, skipped=skipped)
    advance_partitions(
        conn, job_id,
        {p: min(end, scans[p].cut_offset) for p, end in ends.items()
         if p in scans and end > (scans[p].next_offset or 0)},
    )  # fmt: skip
    update_job(conn, job_id, lease_until=now + timedelta(seconds=lease_seconds))
    return ChunkResult("counted", len(new) - len(counted.rejected), skipped, len(fresh))


def refused_by_database(
    trial: Callable[[frozenset[tuple[int, int]]], DBAPIError | None],
    candidates: Sequence[tuple[int, int]], error: DBAPIError,
) -> frozenset[tuple[int, int]]:  # fmt: skip
    """The (partition, offset) pairs the database refuses, found by bisection: `trial(x)`
    runs the chunk with `x` excluded and rolls it back, returning the error if any.

    Raises `error` when the chunk fails even with every candidate excluded (the job's own
    bookkeeping, not the data: a bug or a schema problem)."""
    everything = frozenset(candidates)
    if trial(everything) is not None:
        raise error
    found: set[tuple[int, int]] = set()

    def bisect(part: Sequence[tuple[int, int]]) -> None:
        if len(part) == 1:
            found.add(part[0])
            return
        middle = len(part) // 2
        for half in (part[:middle], part[middle:]):
            # Only `half` (and nothing already found) is tried: everything else is excluded.
            if trial(everything - frozenset(half) | frozenset(found)) is not None:
                bisect(half)

    bisect(list(candidates))
    if not found:
        raise error
    return frozenset(found)


def log_refused(job_id: int, refused: frozenset[tuple[int, int]], error: DBAPIError) -> None:
    detail = one_line(error)[:300]
    logger.error(
        "backfill job %d: the database refused %d event(s), skipped by this job (%s): %s",
        job_id, len(refused), ", ".join(f"{p}@{o}" for p, o in sorted(refused)[:5]), detail,
    )  # fmt: skip


def count_chunk(
    engine: Engine, job_id: int, owner: str, topic: str, records: Sequence[MessageLike],
    ends: Mapping[int, int], skip: Mapping[int, frozenset[int]], index: JobIndex,
    lease_seconds: float, deadline: float,
) -> ChunkResult:  # fmt: skip
    """One chunk (apply_chunk), retried while the database is unreachable (up to `deadline`
    seconds, the start-up deadline); events the database refuses are found by bisection and
    skipped by the job."""

    def chunk(excluded: frozenset[tuple[int, int]], commit: bool = True) -> ChunkResult:
        return apply_chunk(
            engine, job_id, owner, topic, records, ends, skip, index, lease_seconds,
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
            refused = refused_by_database(trial, [(r.partition, r.offset) for r in records], exc)
            log_refused(job_id, refused, exc)
            return chunk(refused)

    return _with_database_retries(attempt, deadline)


def _with_database_retries(attempt: Callable[[], ChunkResult], deadline: float) -> ChunkResult:
    """`attempt()`, retried while the database is unreachable (okrflow.ops.database_retry),
    pausing up to 5 s; after `deadline` seconds, one line and exit 5."""

    def pause(p: Pause) -> None:
        logger.warning(
            "backfill: the database is unreachable; retrying (%.0f s of %.0f s)",
            p.elapsed, deadline,
        )  # fmt: skip
        time.sleep(p.seconds)

    try:
        return retry_while_unreachable(
            attempt, longest_pause=5.0, pause=pause, give_up_after=deadline
        )
    except DBAPIError as exc:
        if not is_connection_error(exc):
            raise
        detail = one_line(exc)
        raise OperatorError(
            ExitCode.DATABASE_UNREACHABLE,
            f"database unreachable: {detail} (gave up after {deadline:.0f} s; the job resumes "
            "where it stopped when okrflow backfill runs again)",
        ) from None
