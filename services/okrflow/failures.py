"""What a failure means to the operator: one line of text, and the exit code it ends with.

A foundation, below every other part of okrflow: `okrflow.cli.main` and the worker
supervisor's processes map what escaped a command with `known_failure`; every module that
reports an exception in one line writes it with `one_line`. The codes are `ExitCode`'s
(docs/cli.md, "Exit codes").
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from pydantic import ValidationError

from okrflow.exitcodes import ExitCode, OperatorError

if TYPE_CHECKING:
    from okrflow.settings import Settings


def one_line(exc: BaseException) -> str:
    """The first line of an exception's text (a driver's error's first line says it all);
    a database error's is its driver's (`.orig`); the exception's type when it has no text."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip()
    first = text.splitlines()[0].strip() if text else ""
    return first or type(inner).__name__


def cannot_read_from_kafka(settings: Settings, exc: BaseException) -> OperatorError:
    """The error of a command that could not read the events topic (`offsets`, `backfill`)."""
    return OperatorError(
        ExitCode.KAFKA_UNREACHABLE,
        f"cannot read {settings.events_topic} from Kafka at {settings.kafka_bootstrap}: "
        f"{one_line(exc)}",
    )


def setting_problem(exc: ValueError, flagged: Collection[str]) -> str:
    """One line for a bad setting, naming its variable, and its flag when it is `flagged`
    (a settings field that has a command-line flag)."""
    if not isinstance(exc, ValidationError):  # pydantic-settings' SettingsError: a bad JSON value
        return one_line(exc)
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        flag = f"--{name.replace('_', '-')} / " if name in flagged else ""
        shown = error.get("input")
        value = f" {shown!r}" if isinstance(shown, str | int | float) else ""
        problems.append(f"{flag}OKRFLOW_{name.upper()}{value}: {error['msg']}")
    return "; ".join(problems)


def known_failure(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and one line for an exception that escaped a command."""
    # lazy: SQLAlchemy and aiokafka add 0.14 s to every okrflow start (okrflow --help too)
    from aiokafka.errors import KafkaError
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if isinstance(exc, OperatorError):  # the store's SchemaOutdated, among others
        return exc.code, str(exc)
    if isinstance(exc, DBAPIError):
        return ExitCode.DATABASE_UNREACHABLE, f"database error: {one_line(exc)}"
    if isinstance(exc, KafkaError):
        return ExitCode.KAFKA_UNREACHABLE, f"Kafka error: {one_line(exc)}"
    if isinstance(exc, SQLAlchemyError | OSError):
        return ExitCode.FAILED, f"{type(exc).__name__}: {one_line(exc)}"
    return ExitCode.FAILED, (
        f"unexpected {type(exc).__name__}: {one_line(exc)} (run with --log-level DEBUG for the "
        "traceback, and please report it)"
    )
