"""Opening the database for commands that only read (`progress`, `validate`,
`apply --dry-run`, `offsets show`, `tokens list`): they never create or migrate one.

A missing SQLite file or an unreachable server is ExitCode.DATABASE_UNREACHABLE, an empty,
older or newer schema ExitCode.SCHEMA_MISMATCH; each one line (OperatorError).
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.failures import one_line
from okrflow.store.engine import DatabaseMissing, open_existing
from okrflow.store.schema import SchemaMissing, SchemaOutdated, require_schema


def open_for_reading(url: str, missing: str = "a read-only command creates none") -> Engine:
    """The existing database at `url`, its schema checked; OperatorError otherwise
    (`missing`: what the line adds when there is no database)."""
    try:
        engine = open_existing(url)
        require_schema(engine)
    except DatabaseMissing as exc:
        raise OperatorError(ExitCode.DATABASE_UNREACHABLE, f"{exc} ({missing})") from None
    except DBAPIError as exc:
        raise OperatorError(
            ExitCode.DATABASE_UNREACHABLE, f"database unreachable: {one_line(exc)}"
        ) from None
    except (SchemaMissing, SchemaOutdated) as exc:
        raise OperatorError(ExitCode.SCHEMA_MISMATCH, str(exc)) from None
    return engine


def open_if_there(url: str) -> tuple[Engine | None, str]:
    """For `apply --dry-run`: the existing database, or (None, why) when there is none to
    compare with (a missing SQLite file, an unreachable server, an empty database). An older
    or newer schema is still an OperatorError: its plans cannot be read reliably."""
    try:
        engine = open_existing(url)
        require_schema(engine)
    except DatabaseMissing as exc:
        return None, str(exc)
    except SchemaMissing:
        return None, "the database holds no okrflow schema yet"
    except DBAPIError as exc:
        return None, f"database unreachable: {one_line(exc)}"
    except SchemaOutdated as exc:
        raise OperatorError(ExitCode.SCHEMA_MISMATCH, str(exc)) from None
    return engine, ""
