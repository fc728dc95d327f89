"""Schema versions: `okrflow db upgrade`, and the automatic upgrade of an empty database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutdated(RuntimeError):
    """The database holds an older schema; `okrflow db upgrade` must run first."""


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
    elif current != head_revision():
        raise SchemaOutdated(
            f"database schema is at revision {current}, this okrflow needs {head_revision()}: "
            "run `okrflow db upgrade`"
        )
