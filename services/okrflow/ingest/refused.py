"""Events the database refuses: which of a batch's events they are, found by bisection.

A batch the database refuses for what it writes (a value too large for an index row, say;
not a database that is down) is tried again in halves, each trial in a transaction that is
rolled back, until single events are blamed. Those become `database_rejected` dead letters,
and the rest of the batch is applied.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from okrflow.counting.decode import DecodedBatch, Delivered
from okrflow.events import InvalidEvent
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.ops.database_retry import is_connection_error


def find_rejected_by_database(
    engine: Engine, batch: DecodedBatch, now: datetime, plans: PlanCache, error: DBAPIError
) -> list[tuple[Delivered, InvalidEvent]]:
    """The events that make the database refuse `batch` (bisected with rolled-back trial
    transactions: about 2 log2(n) trials per such event).

    Raises `error` again when the batch's own bookkeeping fails without any event (a bug or a
    schema problem, not content), or when no single event can be blamed.
    """
    empty = replace(batch, events=[], rejected=[])
    try:
        apply_batch(engine, empty, now, plans, commit=False)
    except DBAPIError as exc:
        if is_connection_error(exc):
            raise
        raise error from exc

    def refused(events: list[Delivered]) -> DBAPIError | None:
        try:
            apply_batch(
                engine, replace(batch, events=events, rejected=[]), now, plans, commit=False
            )
        except DBAPIError as exc:
            if is_connection_error(exc):
                raise
            return exc
        return None

    found: list[tuple[Delivered, InvalidEvent]] = []

    def bisect(events: list[Delivered], exc: DBAPIError) -> None:
        if len(events) == 1:
            detail = str(exc.orig or exc).strip().splitlines()[0][:500]
            found.append((events[0], InvalidEvent("database_rejected", detail)))
            return
        middle = len(events) // 2
        for half in (events[:middle], events[middle:]):
            half_error = refused(half)
            if half_error is not None:
                bisect(half, half_error)

    bisect(batch.events, error)
    if not found:
        raise error
    return found
