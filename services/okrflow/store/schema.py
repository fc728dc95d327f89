"""Schema versions: `okrflow db upgrade`, and the automatic upgrade of an empty database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine

from okrflow.exitcodes import ExitCode, OperatorError

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutdated(OperatorError):
    """The database holds an older schema (`okrflow db upgrade` must run first), or a newer
    one than this okrflow knows: an operator's error, exit code SCHEMA_MISMATCH."""

    def __init__(self, message: str) -> None:
        super().__init__(ExitCode.SCHEMA_MISMATCH, message)


class SchemaMissing(RuntimeError):
    """The database holds no okrflow schema at all (an empty database)."""


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after)."""
    before = current_revision(engine)
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision()


def ensure_schema(engine: Engine) -> None:
    """Upgrade an empty database by itself; refuse to run on an outdated one.

    Raises SchemaOutdated when the database is at an older revision: upgrading a database
    that holds data is an operator's decision (`okrflow db upgrade`).
    """
    current = current_revision(engine)
    if current is None:
        upgrade(engine)
    else:
        _check_revision(current)


def require_schema(engine: Engine) -> None:
    """Check, never change, the schema: for commands that only read.

    Raises SchemaMissing for an empty database, SchemaOutdated for an older or newer one."""
    current = current_revision(engine)
    if current is None:
        raise SchemaMissing(
            "the database holds no okrflow schema: run `okrflow db upgrade` (or `okrflow apply`)"
        )
    _check_revision(current)


def _check_revision(current: str) -> None:
    head = head_revision()
    if current == head:
        return
    try:
        known = ScriptDirectory.from_config(_config()).get_revision(current) is not None
    except CommandError:
        known = False
    if known:
        raise SchemaOutdated(
            f"database schema is at revision {current}, this okrflow needs {head}: "
            "run `okrflow db upgrade`"
        )
    raise SchemaOutdated(
        f"database schema is at revision {current}, newer than this okrflow knows ({head}): "
        "run a newer okrflow (`okrflow db upgrade` cannot go back)"
    )
