"""Waiting for Kafka and the database at start-up, with backoff, up to a deadline.

Each failed attempt logs one line (what is unreachable, where, why, when the next try is);
after `startup_deadline_seconds` the command stops with one `OperatorError` line and the
exit code for what was missing. Failures no wait can cure (a malformed database URL, an
unknown driver, an outdated schema, topics of the wrong shape) stop at once.
Backoff and deadline are tenacity's.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from aiokafka.errors import KafkaError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.failures import one_line
from okrflow.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")


def redacted_url(url: str) -> str:
    """The database URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def _wait(deadline: float) -> Callable[[RetryCallState], float]:
    """Exponential backoff (0.5 s doubling to 5 s, jittered), the last pause cut short so that
    the last attempt falls on the deadline."""
    backoff = wait_exponential_jitter(initial=0.5, max=5.0, jitter=0.25)

    def pause(state: RetryCallState) -> float:
        left = deadline - (state.seconds_since_start or 0.0)
        return max(0.0, min(backoff(state), left))

    return pause


def _before_sleep(what: str, deadline: float, started: float) -> Callable[[RetryCallState], None]:
    def log(state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        pause = state.next_action.sleep if state.next_action is not None else 0.0
        left = max(0.0, deadline - (time.monotonic() - started))
        logger.warning(
            "waiting for %s: %s (attempt %d; next in %.1f s, giving up in %.0f s)",
            what, one_line(exc) if exc else "?", state.attempt_number, pause, left,
        )  # fmt: skip

    return log


class _Quieted:
    """A logger silenced below CRITICAL until `restore()`."""

    def __init__(self, quieted: logging.Logger) -> None:
        self._logger = quieted
        self._level = quieted.level
        quieted.setLevel(logging.CRITICAL)

    def restore(self) -> None:
        self._logger.setLevel(self._level)


def wait_for_database(
    settings: Settings,
    open_engine: Callable[[str], Engine],
    check: Callable[[Engine], None],
    wait_out: Mapping[type[Exception], ExitCode] | None = None,
) -> Engine:
    """`open_engine(url)`, then `check(engine)` (e.g. the schema check), retried while the
    database does not answer or raises one of `wait_out` (exception type -> the exit code if it
    lasts past the deadline, e.g. a schema not created yet)."""
    where = f"the database at {redacted_url(settings.database_url)}"
    waited = dict(wait_out or {})
    engines: list[Engine] = []

    def attempt() -> Engine:
        if not engines:
            engines.append(open_engine(settings.database_url))
        engine = engines[0]
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        check(engine)
        return engine

    try:
        sqlite = make_url(settings.database_url).get_backend_name() == "sqlite"
    except ArgumentError:
        sqlite = False
    # A local SQLite file that cannot be opened will not open later: no waiting for it.
    transient: tuple[type[BaseException], ...] = (*waited, *(() if sqlite else _DATABASE_DOWN))
    deadline = settings.startup_deadline_seconds
    started = time.monotonic()
    try:
        for try_ in Retrying(
            stop=stop_after_delay(deadline), wait=_wait(deadline), reraise=True,
            retry=retry_if_exception_type(transient),
            before_sleep=_before_sleep(where, deadline, started),
        ):  # fmt: skip
            with try_:
                return attempt()
    except (ArgumentError, NoSuchModuleError) as exc:
        raise OperatorError(
            ExitCode.DATABASE_UNREACHABLE,
            f"database URL {redacted_url(settings.database_url)!r}: {one_line(exc)} "
            "(expected e.g. sqlite:///okrflow.db or postgresql://user:pass@host/db)",
        ) from None
    except Exception as exc:
        for engine in engines:
            engine.dispose()
        after = "" if sqlite and not isinstance(exc, tuple(waited)) else (
            f" (gave up after {deadline:.0f} s)"
        )  # fmt: skip
        for kind, code in waited.items():
            if isinstance(exc, kind):
                raise OperatorError(code, f"{where}: {exc}{after}") from None
        if isinstance(exc, _DATABASE_DOWN):
            raise OperatorError(
                ExitCode.DATABASE_UNREACHABLE, f"cannot reach {where}: {one_line(exc)}{after}"
            ) from None
        raise
    raise AssertionError("unreachable: tenacity returns or raises")


_DATABASE_DOWN = (OperationalError, DBAPIError, OSError)


async def wait_for_kafka(settings: Settings, probe: Callable[[], Awaitable[T]]) -> T:
    """`probe()` (which talks to the brokers, e.g. creating the topics), retried while Kafka
    does not answer."""
    where = f"Kafka at {settings.kafka_bootstrap}"
    deadline = settings.startup_deadline_seconds
    started = time.monotonic()
    # aiokafka logs its own ERROR for every failed connection; the line per attempt is ours.
    quiet = _Quieted(logging.getLogger("aiokafka"))
    try:
        async for try_ in AsyncRetrying(
            stop=stop_after_delay(deadline), wait=_wait(deadline), reraise=True,
            retry=retry_if_exception_type((KafkaError, OSError, TimeoutError)),
            before_sleep=_before_sleep(where, deadline, started),
        ):  # fmt: skip
            with try_:
                return await probe()
    except (KafkaError, OSError, TimeoutError) as exc:
        raise OperatorError(
            ExitCode.KAFKA_UNREACHABLE,
            f"cannot reach {where}: {one_line(exc)} (gave up after {deadline:.0f} s; "
            "OKRFLOW_STARTUP_DEADLINE_SECONDS sets the wait)",
        ) from None
    finally:
        quiet.restore()
    raise AssertionError("unreachable: tenacity returns or raises")
