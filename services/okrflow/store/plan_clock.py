"""The plan clock, SQL only: one row holding the newest plan revision. Every batch
transaction reads it (share-locked) right after locking its offsets, and an apply takes it
exclusively and advances it, so a batch never counts with plans an apply is replacing
(docs/design/history-and-backfill.md 1.1)."""

from __future__ import annotations

from sqlalchemy import Connection, select, text, update
from sqlalchemy.exc import DBAPIError

from okrflow.store.tables import plan_clock

_CLOCK = select(plan_clock.c.revision).where(plan_clock.c.id == 1)


def plans_revision(conn: Connection, *, share_lock: bool = False) -> int:
    """Changes whenever any shop's plan changes (the plan clock: the newest revision id; 0
    when none). With `share_lock`, a batch transaction holds the clock until it ends
    (PostgreSQL FOR KEY SHARE: batches never block each other, an apply waits for them, and
    a batch that starts during an apply waits for it and then reads the apply's revision).
    SQLite needs no lock: writer transactions begin IMMEDIATE, so they are serial anyway."""
    query = _CLOCK
    if share_lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True, key_share=True)
    revision = conn.execute(query).scalar_one_or_none()
    return 0 if revision is None else int(revision)


class PlanClockBusy(RuntimeError):
    """Batch transactions held the plan clock longer than the apply would wait."""


_LOCK_NOT_AVAILABLE = "55P03"


def take_plan_clock(conn: Connection, timeout_seconds: float = 30) -> None:
    """Hold the plan clock exclusively until the transaction ends: waits (up to
    `timeout_seconds`, then PlanClockBusy) for every batch transaction in flight. Call after
    `lock_shop`, before reading anything the apply decides on."""
    if conn.dialect.name != "postgresql":
        return  # SQLite: the apply's BEGIN IMMEDIATE already excludes every batch
    conn.execute(text(f"SET LOCAL lock_timeout = {max(1, round(timeout_seconds * 1000))}"))
    try:
        conn.execute(_CLOCK.with_for_update())
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise PlanClockBusy(
                f"workers held the plan clock for more than {timeout_seconds:g} s"
            ) from exc
        raise
    conn.execute(text("SET LOCAL lock_timeout TO DEFAULT"))


def advance_plan_clock(conn: Connection, revision: int) -> None:
    """Set the clock to the revision just written (inside the apply's transaction)."""
    conn.execute(update(plan_clock).where(plan_clock.c.id == 1).values(revision=revision))
