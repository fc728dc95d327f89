"""Backfill jobs, SQL only: created by `apply` with their cuts, read for `progress` and the
exporter, failed by `offsets reset` (docs/design/history-and-backfill.md 1.2-1.3, 1.9)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)  # fmt: skip

from okrflow.store.counters import as_utc
from okrflow.store.dialect import insert_new_rows
from okrflow.store.tables import (
    applied_offsets,
    backfill_jobs,
    backfill_partitions,
    backfill_seen,
    key_results,
)  # fmt: skip

BackfillState = Literal["pending", "running", "done"]
UNFINISHED = ("pending", "running")


def create_backfill_job(
    conn: Connection, shop: str, revision_id: int, key_result_ids: Iterable[int],
    topic: str, now: datetime, *, without_cut: bool = False,
) -> int | None:  # fmt: skip
    """One job for `key_result_ids` (rows just written by the apply), with the cut: each
    partition's applied offset as this transaction sees it. Call holding the plan clock.

    None, and no job, when nothing of `topic` was applied yet: the live worker counts the
    whole log then. With `without_cut` such a job is made anyway, with no partition rows:
    a baseline measured from data must still wait until the worker has counted what the log
    held, and the runner's finish records where it ended (`add_uncut_partitions`)."""
    cut = conn.execute(
        select(applied_offsets.c.kafka_partition, applied_offsets.c.next_offset).where(
            applied_offsets.c.topic == topic
        )
    ).all()
    if not cut and not without_cut:
        return None
    job_id = int(
        conn.execute(
            insert(backfill_jobs)
            .values(
                shop=shop, revision_id=revision_id, state="pending", created_at=now,
                skipped_events=0, lost_messages=0,
            )
            .returning(backfill_jobs.c.id)
        ).scalar_one()
    )  # fmt: skip
    conn.execute(
        update(key_results)
        .where(key_results.c.id.in_(list(key_result_ids)))
        .values(backfill_job_id=job_id)
    )
    if cut:
        conn.execute(
            insert(backfill_partitions),
            [{"job_id": job_id, "kafka_partition": p, "cut_offset": o} for p, o in cut],
        )
    return job_id


@dataclass(frozen=True)
class JobCut:
    job_id: int
    state: str
    cut: dict[int, int]  # partition -> cut offset


def read_job_cuts(conn: Connection, shop: str) -> list[JobCut]:
    """A shop's jobs, oldest first, with their cuts."""
    jobs = conn.execute(
        select(backfill_jobs.c.id, backfill_jobs.c.state)
        .where(backfill_jobs.c.shop == shop)
        .order_by(backfill_jobs.c.id)
    ).all()
    cuts: dict[int, dict[int, int]] = {}
    for job_id, partition, cut_offset in conn.execute(
        select(
            backfill_partitions.c.job_id,
            backfill_partitions.c.kafka_partition,
            backfill_partitions.c.cut_offset,
        ).where(backfill_partitions.c.job_id.in_([j.id for j in jobs]))
    ):
        cuts.setdefault(job_id, {})[partition] = int(cut_offset)
    return [JobCut(j.id, j.state, cuts.get(j.id, {})) for j in jobs]


def read_backfill_states(
    conn: Connection, key_result_ids: Iterable[int]
) -> dict[int, BackfillState]:
    """Each key result's backfill as `progress` shows it (absent: none): `pending` for a job
    pending or running with an expired lease (nobody works on it), `running` with a live
    lease, `done`; cancelled and failed jobs show as pending (the values are incomplete).
    Leases are compared with the database's clock, never the host's. A job scanned to its
    cut that waits for a baseline window is `done` for its other key results and KPIs."""
    ids = list(key_result_ids)
    if not ids:
        return {}
    rows = conn.execute(
        select(
            key_results.c.id,
            backfill_jobs.c.state,
            backfill_jobs.c.lease_until >= func.current_timestamp(),
            _complete_in_unfinished_job(),
        )
        .join(backfill_jobs, backfill_jobs.c.id == key_results.c.backfill_job_id)
        .where(key_results.c.id.in_(ids))
    )
    states: dict[int, BackfillState] = {}
    for kr_id, state, lease_live, complete in rows:
        if state == "done" or complete:
            states[kr_id] = "done"
        elif state == "running" and lease_live:
            states[kr_id] = "running"
        else:
            states[kr_id] = "pending"
    return states


def fail_unfinished_jobs(conn: Connection, error: str, now: datetime) -> int:
    """Mark every pending or running job failed (their cuts name positions in a log that
    no longer holds); returns how many."""
    result = conn.execute(
        update(backfill_jobs)
        .where(backfill_jobs.c.state.in_(UNFINISHED))
        .values(state="failed", error=error, finished_at=now, owner=None, lease_until=None)
    )
    return int(result.rowcount)


def _complete_in_unfinished_job() -> ColumnElement[bool]:
    """A key result (or KPI) of a job still pending or running whose scan is finished (every
    partition has its freeze offset) and that does not wait for a baseline: its values are
    complete; the job stays open only for the baselines of others (until their window ends)."""
    of_job = backfill_partitions.c.job_id == backfill_jobs.c.id
    return and_(
        backfill_jobs.c.state.in_(UNFINISHED),
        exists().where(of_job),
        ~exists().where(of_job, backfill_partitions.c.freeze_offset.is_(None)),
        key_results.c.baseline_state.is_distinct_from("waiting"),
    )


def backfilling_key_results(conn: Connection) -> frozenset[int]:
    """Key results in force whose backfill is not done yet (pending or running): their
    values are partial."""
    return frozenset(
        conn.execute(
            select(key_results.c.id)
            .join(backfill_jobs, backfill_jobs.c.id == key_results.c.backfill_job_id)
            .where(
                backfill_jobs.c.state.in_(UNFINISHED),
                key_results.c.retired_at.is_(None),
                ~_complete_in_unfinished_job(),
            )
        ).scalars()
    )


def backfill_clock(conn: Connection) -> tuple[int, int]:
    """Moves whenever a job changes state or a scan advances (jobs finished, scanned
    offsets): readers that cache by it read again when a backfill moved."""
    finished = conn.execute(
        select(func.count()).where(backfill_jobs.c.state.not_in(UNFINISHED))
    ).scalar_one()
    scanned = conn.execute(
        select(
            func.coalesce(func.sum(func.coalesce(backfill_partitions.c.next_offset, 0)), 0)
            + func.count(backfill_partitions.c.freeze_offset)  # a scan finished
        )
    ).scalar_one()
    return int(finished), int(scanned)


# --- the runner's side (okrflow.backfill.runner): take, scan in chunks, finish ----------------


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


def remaining_messages(conn: Connection) -> dict[str, int]:
    """Per shop with an unfinished job: messages below the cuts not scanned yet (an upper
    bound until a scan starts: the log's start is not known here)."""
    rows = conn.execute(
        select(
            backfill_jobs.c.shop,
            func.sum(
                backfill_partitions.c.cut_offset
                - func.coalesce(backfill_partitions.c.next_offset, 0)
            ),
        )
        .join(backfill_partitions, backfill_partitions.c.job_id == backfill_jobs.c.id)
        .where(backfill_jobs.c.state.in_(UNFINISHED))
        .group_by(backfill_jobs.c.shop)
    )
    return {shop: max(0, int(n or 0)) for shop, n in rows}
