"""Backfill jobs, SQL only, the runner's side (okrflow.backfill.runner): list, take and lock
jobs, scan in chunks (partitions, the dedupe set, counts), finish; and failed by `offsets
reset`. How `apply` makes them and readers see them: `store.backfill_jobs`
(docs/design/history-and-backfill.md 1.4, 1.9)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)  # fmt: skip

from okrflow.store.dialect import as_utc, insert_new_rows
from okrflow.store.tables import backfill_jobs, backfill_partitions, backfill_seen, key_results

UNFINISHED = ("pending", "running")


def fail_unfinished_jobs(conn: Connection, error: str, now: datetime) -> int:
    """Mark every pending or running job failed (their cuts name positions in a log that
    no longer holds); returns how many."""
    result = conn.execute(
        update(backfill_jobs)
        .where(backfill_jobs.c.state.in_(UNFINISHED))
        .values(state="failed", error=error, finished_at=now, owner=None, lease_until=None)
    )
    return int(result.rowcount)


def db_now(conn: Connection) -> datetime:
    """The database's clock, aware UTC: leases are judged by it, never by a host's clock.
    (SQLite's CURRENT_TIMESTAMP has whole seconds; its strftime gives milliseconds.)"""
    if conn.dialect.name == "sqlite":
        text = conn.execute(select(func.strftime("%Y-%m-%d %H:%M:%f", "now"))).scalar_one()
        return datetime.fromisoformat(str(text)).replace(tzinfo=UTC)
    now: datetime = conn.execute(select(func.current_timestamp())).scalar_one()
    return as_utc(now)


@dataclass(frozen=True)
class JobRow:
    id: int
    shop: str
    state: str
    owner: str | None
    lease_until: datetime | None
    skipped_events: int
    lost_messages: int
    error: str | None


_JOB_COLUMNS = (
    backfill_jobs.c.id, backfill_jobs.c.shop, backfill_jobs.c.state, backfill_jobs.c.owner,
    backfill_jobs.c.lease_until, backfill_jobs.c.skipped_events, backfill_jobs.c.lost_messages,
    backfill_jobs.c.error,
)  # fmt: skip


def _job(row: Row[Any, Any, Any, Any, Any, Any, Any, Any]) -> JobRow:
    return JobRow(
        int(row.id), row.shop, row.state, row.owner,
        as_utc(row.lease_until) if row.lease_until is not None else None,
        int(row.skipped_events), int(row.lost_messages), row.error,
    )  # fmt: skip


def list_jobs(conn: Connection, shop: str | None, states: Sequence[str]) -> list[JobRow]:
    """Jobs in `states` (of `shop`, or every shop), oldest first."""
    query = select(*_JOB_COLUMNS).where(backfill_jobs.c.state.in_(list(states)))
    if shop is not None:
        query = query.where(backfill_jobs.c.shop == shop)
    return [_job(r) for r in conn.execute(query.order_by(backfill_jobs.c.id))]


def take_job(
    conn: Connection, job_id: int, owner: str, now: datetime, lease_until: datetime
) -> bool:
    """Take a pending job, or a running one whose lease ran out; True when taken."""
    result = conn.execute(
        update(backfill_jobs)
        .where(
            backfill_jobs.c.id == job_id,
            backfill_jobs.c.state.in_(UNFINISHED),
            or_(backfill_jobs.c.owner.is_(None), backfill_jobs.c.lease_until < now),
        )
        .values(
            owner=owner,
            lease_until=lease_until,
            state="running",
            started_at=func.coalesce(backfill_jobs.c.started_at, now),
        )
    )
    return int(result.rowcount) == 1


def lock_job(conn: Connection, job_id: int) -> JobRow | None:
    """The job's row, locked to the end of the transaction (SQLite: the writer's lock)."""
    query = select(*_JOB_COLUMNS).where(backfill_jobs.c.id == job_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return None if row is None else _job(row)


@dataclass(frozen=True)
class PartitionScan:
    cut_offset: int
    next_offset: int | None  # None: not started (the log's start)
    freeze_offset: int | None


def read_partitions(conn: Connection, job_id: int) -> dict[int, PartitionScan]:
    rows = conn.execute(
        select(
            backfill_partitions.c.kafka_partition, backfill_partitions.c.cut_offset,
            backfill_partitions.c.next_offset, backfill_partitions.c.freeze_offset,
        ).where(backfill_partitions.c.job_id == job_id)
    )  # fmt: skip
    return {
        int(p): PartitionScan(int(cut), None if nxt is None else int(nxt),
                              None if frz is None else int(frz))
        for p, cut, nxt, frz in rows
    }  # fmt: skip


def advance_partitions(conn: Connection, job_id: int, next_offsets: Mapping[int, int]) -> None:
    """Record how far the scan got, per partition (offsets below are counted)."""
    if not next_offsets:
        return
    conn.execute(
        update(backfill_partitions)
        .where(backfill_partitions.c.job_id == job_id,
               backfill_partitions.c.kafka_partition == bindparam("b_partition"))
        .values(next_offset=bindparam("b_next")),
        [{"b_partition": p, "b_next": o} for p, o in sorted(next_offsets.items())],
    )  # fmt: skip


def update_job(conn: Connection, job_id: int, **values: object) -> None:
    conn.execute(update(backfill_jobs).where(backfill_jobs.c.id == job_id).values(**values))


def add_job_counts(conn: Connection, job_id: int, skipped: int = 0, lost: int = 0) -> None:
    if skipped or lost:
        update_job(
            conn, job_id,
            skipped_events=backfill_jobs.c.skipped_events + skipped,
            lost_messages=backfill_jobs.c.lost_messages + lost,
        )  # fmt: skip


def job_measures(conn: Connection, job_id: int) -> list[int]:
    """The job's key results (and KPIs) still in force."""
    return [
        int(i)
        for i in conn.execute(
            select(key_results.c.id).where(
                key_results.c.backfill_job_id == job_id, key_results.c.retired_at.is_(None)
            )
        ).scalars()
    ]


def measures_waiting_for_baseline(conn: Connection, job_id: int) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                key_results.c.backfill_job_id == job_id,
                key_results.c.retired_at.is_(None),
                key_results.c.baseline_state == "waiting",
            )
        ).scalar_one()
    )


def freeze_partitions(conn: Connection, job_id: int, log_ends: Mapping[int, int]) -> None:
    """Record each partition's log end at the scan's end (kept if already recorded)."""
    if not log_ends:
        return
    conn.execute(
        update(backfill_partitions)
        .where(backfill_partitions.c.job_id == job_id,
               backfill_partitions.c.kafka_partition == bindparam("b_partition"),
               backfill_partitions.c.freeze_offset.is_(None))
        .values(freeze_offset=bindparam("b_end")),
        [{"b_partition": p, "b_end": o} for p, o in sorted(log_ends.items())],
    )  # fmt: skip


def add_uncut_partitions(conn: Connection, job_id: int, log_ends: Mapping[int, int]) -> None:
    """Partitions of which nothing was applied when the job was made (or every partition, for
    a job without a cut): one row each, with nothing to scan (cut 0) and the log end at the
    scan's finish as its freeze offset."""
    if not log_ends:
        return
    conn.execute(
        insert(backfill_partitions),
        [
            {"job_id": job_id, "kafka_partition": p, "cut_offset": 0, "next_offset": 0,
             "freeze_offset": end}
            for p, end in sorted(log_ends.items())
        ],
    )  # fmt: skip


def claim_backfill_ids(conn: Connection, job_id: int, keys: Sequence[tuple[str, str]]) -> set[int]:
    """Insert each (shop, event id) (unique within `keys`) into the job's dedupe set; return
    the positions of the keys that were already there."""
    if not keys:
        return set()
    rows = [{"job_id": job_id, "shop": shop, "event_id": event_id} for shop, event_id in keys]
    fresh = {
        (s, e)
        for _, s, e in insert_new_rows(conn, backfill_seen, rows, ["job_id", "shop", "event_id"])
    }
    return {i for i, key in enumerate(keys) if key not in fresh}


def delete_seen(conn: Connection, job_id: int, limit: int) -> int:
    """Delete up to `limit` of a finished job's dedupe rows; returns how many."""
    some = (
        select(backfill_seen.c.shop, backfill_seen.c.event_id)
        .where(backfill_seen.c.job_id == job_id)
        .limit(limit)
    )
    result = conn.execute(
        delete(backfill_seen).where(
            backfill_seen.c.job_id == job_id,
            tuple_(backfill_seen.c.shop, backfill_seen.c.event_id).in_(some),
        )
    )
    return int(result.rowcount)
