"""Backfill jobs as the rest of okrflow sees them, SQL only: made by `apply` with their cuts,
read for `progress`, the exporter and the pages (each key result's state, the clock that
moves with them, the messages left). The runner's side is `store.backfill`
(docs/design/history-and-backfill.md 1.2-1.3)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, Connection, and_, exists, func, insert, select, update

from okrflow.store.backfill import UNFINISHED
from okrflow.store.tables import applied_offsets, backfill_jobs, backfill_partitions, key_results

BackfillState = Literal["pending", "running", "done"]


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
