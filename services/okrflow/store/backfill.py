"""Backfill jobs, SQL only: created by `apply` with their cuts, read for `progress` and the
exporter, failed by `offsets reset` (docs/design/history-and-backfill.md 1.2-1.3, 1.9)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, func, insert, select, update

from okrflow.store.tables import applied_offsets, backfill_jobs, backfill_partitions, key_results

BackfillState = Literal["pending", "running", "done"]
UNFINISHED = ("pending", "running")


def create_backfill_job(
    conn: Connection, shop: str, revision_id: int, key_result_ids: Iterable[int],
    topic: str, now: datetime,
) -> int | None:  # fmt: skip
    """One job for `key_result_ids` (rows just written by the apply), with the cut: each
    partition's applied offset as this transaction sees it. Call holding the plan clock.

    None, and no job, when nothing of `topic` was applied yet: the live worker counts the
    whole log then."""
    cut = conn.execute(
        select(applied_offsets.c.kafka_partition, applied_offsets.c.next_offset).where(
            applied_offsets.c.topic == topic
        )
    ).all()
    if not cut:
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
    Leases are compared with the database's clock, never the host's."""
    ids = list(key_result_ids)
    if not ids:
        return {}
    rows = conn.execute(
        select(
            key_results.c.id,
            backfill_jobs.c.state,
            backfill_jobs.c.lease_until >= func.current_timestamp(),
        )
        .join(backfill_jobs, backfill_jobs.c.id == key_results.c.backfill_job_id)
        .where(key_results.c.id.in_(ids))
    )
    states: dict[int, BackfillState] = {}
    for kr_id, state, lease_live in rows:
        if state == "done":
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


def backfilling_key_results(conn: Connection) -> frozenset[int]:
    """Key results in force whose backfill is not done yet (pending or running): their
    values are partial."""
    return frozenset(
        conn.execute(
            select(key_results.c.id)
            .join(backfill_jobs, backfill_jobs.c.id == key_results.c.backfill_job_id)
            .where(backfill_jobs.c.state.in_(UNFINISHED), key_results.c.retired_at.is_(None))
        ).scalars()
    )


def backfill_clock(conn: Connection) -> tuple[int, int]:
    """Moves whenever a job changes state or a scan advances (jobs finished, scanned
    offsets): readers that cache by it read again when a backfill moved."""
    finished = conn.execute(
        select(func.count()).where(backfill_jobs.c.state.not_in(UNFINISHED))
    ).scalar_one()
    scanned = conn.execute(
        select(func.coalesce(func.sum(func.coalesce(backfill_partitions.c.next_offset, 0)), 0))
    ).scalar_one()
    return int(finished), int(scanned)
