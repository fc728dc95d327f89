"""The one retry policy for a database that becomes unreachable while okrflow writes to it.

Which errors are the database's (it is down, or the way to it: retry) and which are the
data's (isolate the events that cause them: never retry), and how long to wait between tries:
0.5 s, doubling up to `longest_pause`, until the call succeeds or `give_up_after` seconds
have passed (tenacity's `wait_exponential` and `stop_after_delay`). The worker's batch
transaction retries without a limit, pausing up to 30 s, until the worker stops
(okrflow.ingest.sink); a backfill chunk up to `OKRFLOW_STARTUP_DEADLINE_SECONDS`, pausing up
to 5 s (okrflow.backfill.chunk). Waiting for the database at start-up is
okrflow.ops.startup's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    stop_never,
    wait_exponential,
)

T = TypeVar("T")

FIRST_PAUSE_SECONDS = 0.5


def is_connection_error(exc: DBAPIError) -> bool:
    """A fault of the database or the way to it (retry), not of the data written (isolate).

    PostgreSQL says which by SQLSTATE: class 08 (connection), 57P (shutdown, cannot connect
    now), 53 (insufficient resources); psycopg's OperationalError also covers data limits
    such as an index row too large (54000), which are content. SQLite's operational errors
    (locked, I/O) are all transient here.
    """
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(("08", "57P", "53"))
    return isinstance(exc, OperationalError)


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database is unreachable (retried), not that it refused data."""
    return isinstance(exc, DBAPIError) and is_connection_error(exc)


@dataclass(frozen=True)
class Pause:
    """A pause before the next try: after which error, how long, after how long in all."""

    error: DBAPIError
    seconds: float
    elapsed: float  # seconds since the first try
    attempt: int  # the try that failed, from 1


def retry_while_unreachable(
    attempt: Callable[[], T], *, longest_pause: float, pause: Callable[[Pause], None],
    give_up_after: float | None = None,
) -> T:  # fmt: skip
    """`attempt()`, called again while it raises an unreachable-database error (see
    `unreachable`), with `pause` between tries; any other exception propagates at once.
    After `give_up_after` seconds (None: never) the last error is raised again.

    `pause` waits (and says so: a log line, a metric); it may raise to stop retrying (a
    worker that stops). It is called with the error, so tenacity's own sleep is not used.
    """

    def before_sleep(state: RetryCallState) -> None:
        outcome, action = state.outcome, state.next_action
        assert outcome is not None and action is not None
        error = outcome.exception()
        assert isinstance(error, DBAPIError)
        pause(Pause(error, action.sleep, state.seconds_since_start or 0.0, state.attempt_number))

    for try_ in Retrying(
        stop=stop_never if give_up_after is None else stop_after_delay(give_up_after),
        wait=wait_exponential(multiplier=FIRST_PAUSE_SECONDS, max=longest_pause),
        retry=retry_if_exception(unreachable), reraise=True, before_sleep=before_sleep,
        sleep=_paused_already,
    ):  # fmt: skip
        with try_:
            return attempt()
    raise AssertionError("unreachable: tenacity returns or raises")


def _paused_already(seconds: float) -> None:
    """tenacity's sleep: the pause happened in `before_sleep` (it needs the error)."""
