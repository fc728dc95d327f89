"""Baselines measured from data, SQL only: which key results wait for theirs, whether their
backfill job lets them be frozen, and the freeze's writes (docs/design/history-and-backfill.md
3.3). The decisions are okrflow.plans.freeze'."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, and_, exists, func, select, update

from okrflow.store.tables import (
    applied_offsets,
    backfill_jobs,
    backfill_partitions,
    key_results,
    plan_revisions,
    shops,
)

WAITING = "waiting"
MEASURED = "measured"
# A job in these states counted nothing complete: its measures keep waiting.
_ABANDONED = ("failed", "cancelled")


def mark_waiting(conn: Connection, key_result_ids: Iterable[int]) -> None:
    """Key results just written by an apply whose baseline is measured from data."""
    ids = list(key_result_ids)
    if ids:
        conn.execute(
            update(key_results).where(key_results.c.id.in_(ids)).values(baseline_state=WAITING)
        )


def any_waiting(conn: Connection) -> bool:
    """Whether a key result in force waits for its baseline (the worker's cheap check)."""
    query = select(
        exists().where(key_results.c.baseline_state == WAITING, key_results.c.retired_at.is_(None))
    )
    return bool(conn.execute(query).scalar())


def read_waiting(conn: Connection) -> dict[int, int | None]:
    """Key results in force waiting for their baseline -> their backfill job (None: none, the
    topic had nothing applied when they were activated)."""
    rows = conn.execute(
        select(key_results.c.id, key_results.c.backfill_job_id).where(
            key_results.c.baseline_state == WAITING, key_results.c.retired_at.is_(None)
        )
    )
    return {int(kr_id): None if job is None else int(job) for kr_id, job in rows}


def read_measured_baselines(conn: Connection, shop: str | None = None) -> dict[int, float]:
    """Key results in force with a frozen baseline -> its value."""
    query = select(key_results.c.id, key_results.c.measured_baseline).where(
        key_results.c.baseline_state == MEASURED, key_results.c.retired_at.is_(None)
    )
    if shop is not None:
        query = query.where(key_results.c.shop == shop)
    return {int(kr_id): float(value) for kr_id, value in conn.execute(query)}


def scanned_and_applied(conn: Connection, job_ids: Iterable[int], topic: str) -> set[int]:
    """The jobs whose scan is finished (every partition has its `freeze_offset`, written by
    the runner at the job's finish) and whose freeze offsets the live worker has reached on
    `topic` (`applied_offsets.next_offset >= freeze_offset`, a partition with nothing applied
    counting as 0); failed and cancelled jobs are never ready."""
    ids = list(job_ids)
    if not ids:
        return set()
    applied = func.coalesce(applied_offsets.c.next_offset, 0)
    behind = (
        select(backfill_partitions.c.job_id)
        .outerjoin(
            applied_offsets,
            and_(
                applied_offsets.c.topic == topic,
                applied_offsets.c.kafka_partition == backfill_partitions.c.kafka_partition,
            ),
        )
        .where(
            backfill_partitions.c.job_id.in_(ids),
            (backfill_partitions.c.freeze_offset.is_(None))
            | (applied < backfill_partitions.c.freeze_offset),
        )
    )
    not_ready = set(conn.execute(behind).scalars())
    scanned = conn.execute(
        select(backfill_jobs.c.id).where(
            backfill_jobs.c.id.in_(ids), backfill_jobs.c.state.not_in(_ABANDONED)
        )
    ).scalars()
    # A job with no partition row at all never started a scan the runner could finish.
    with_partitions = set(
        conn.execute(
            select(backfill_partitions.c.job_id).where(backfill_partitions.c.job_id.in_(ids))
        ).scalars()
    )
    return {int(j) for j in scanned if j in with_partitions and j not in not_ready}


def write_measured_baseline(
    conn: Connection, key_result_id: int, value: float, now: datetime
) -> None:
    conn.execute(
        update(key_results)
        .where(key_results.c.id == key_result_id, key_results.c.baseline_state == WAITING)
        .values(measured_baseline=value, baseline_state=MEASURED, baseline_measured_at=now)
    )


def insert_measured_revision(
    conn: Connection, shop: str, changes: list[dict[str, str]], now: datetime
) -> int:
    """A plan revision recording the baselines frozen for `shop` (its file text is the
    previous revision's: the file did not change); it becomes the shop's revision."""
    source = conn.execute(
        select(plan_revisions.c.source)
        .where(plan_revisions.c.shop == shop)
        .order_by(plan_revisions.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    revision_id = int(
        conn.execute(
            plan_revisions.insert()
            .values(shop=shop, applied_at=now, changes=json.dumps(changes), source=source or "")
            .returning(plan_revisions.c.id)
        ).scalar_one()
    )
    conn.execute(update(shops).where(shops.c.shop == shop).values(revision_id=revision_id))
    return revision_id


def scanned_unfinished_jobs(conn: Connection) -> list[int]:
    """Jobs the runner finished scanning (every partition has its `freeze_offset`) that are
    not marked done yet: the runner leaves them so while a key result waits for its baseline."""
    unfrozen = exists().where(
        backfill_partitions.c.job_id == backfill_jobs.c.id,
        backfill_partitions.c.freeze_offset.is_(None),
    )
    scanned = exists().where(backfill_partitions.c.job_id == backfill_jobs.c.id)
    query = select(backfill_jobs.c.id).where(
        backfill_jobs.c.state.in_(("pending", "running")), scanned, ~unfrozen
    )
    return [int(j) for j in conn.execute(query).scalars()]


def finish_jobs_without_waiting(conn: Connection, job_ids: Iterable[int], now: datetime) -> None:
    """Mark `done` each of these jobs none of whose key results in force still waits."""
    ids = list(job_ids)
    if not ids:
        return
    still_waiting = exists().where(
        key_results.c.backfill_job_id == backfill_jobs.c.id,
        key_results.c.baseline_state == WAITING,
        key_results.c.retired_at.is_(None),
    )
    conn.execute(
        update(backfill_jobs)
        .where(
            backfill_jobs.c.id.in_(ids),
            backfill_jobs.c.state.not_in(("done", *_ABANDONED)),
            ~still_waiting,
        )
        .values(
            state="done",
            finished_at=func.coalesce(backfill_jobs.c.finished_at, now),
            owner=None,
            lease_until=None,
        )
    )
