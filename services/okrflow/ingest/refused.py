"""Events the database refuses: which of a batch's events they are, found by bisection.

A batch the database refuses for what it writes (a value too large for an index row, say;
not a database that is down) is tried again in halves, each trial in a transaction that is
rolled back, until single events are blamed. Those become `database_rejected` dead letters,
and the rest of the batch is applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.exc import DBAPIError

from okrflow.counting.decode import DecodedBatch, Delivered
from okrflow.events import InvalidEvent
from okrflow.failures import one_line
from okrflow.ops.database_retry import is_connection_error


def find_rejected(
    batch: DecodedBatch, error: DBAPIError, trial: Callable[[DecodedBatch], None]
) -> list[tuple[Delivered, InvalidEvent]]:
    """The events that make the database refuse `batch` with `error`, bisected: `trial(b)`
    writes `b` and rolls it back, raising what the database says (about 2 log2(n) trials per
    such event).

    Raises `error` again when the batch's own bookkeeping fails without any event (a bug or a
    schema problem, not content), or when no single event can be blamed; a database that
    becomes unreachable meanwhile raises its own error (retried by the caller).
    """
    empty = replace(batch, events=[], rejected=[])
    try:
        trial(empty)
    except DBAPIError as exc:
        if is_connection_error(exc):
            raise
        raise error from exc

    def refused(events: list[Delivered]) -> DBAPIError | None:
        try:
            trial(replace(batch, events=events, rejected=[]))
        except DBAPIError as exc:
            if is_connection_error(exc):
                raise
            return exc
        return None

    found: list[tuple[Delivered, InvalidEvent]] = []

    def bisect(events: list[Delivered], exc: DBAPIError) -> None:
        if len(events) == 1:
            detail = one_line(exc)[:500]
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
