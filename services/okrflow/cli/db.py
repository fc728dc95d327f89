"""`okrflow db upgrade`: apply every pending schema migration."""

from __future__ import annotations

import argparse

from okrflow.cli.subcommands import Subcommands
from okrflow.exitcodes import ExitCode
from okrflow.settings import Settings


def register(sub: Subcommands) -> None:
    db = sub.add_parser("db", help="database schema")
    db.add_argument(
        "action", choices=["upgrade"], help="upgrade: apply every pending schema migration"
    )
    db.set_defaults(run=cmd_db)


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: SQLAlchemy and Alembic add 0.19 s to every okrflow start (okrflow --help too)
    from okrflow.store.engine import make_engine
    from okrflow.store.schema import upgrade

    before, after = upgrade(make_engine(settings.database_url))
    if before == after:
        print(f"database already at revision {after}")
    else:
        print(f"database upgraded from {before or 'empty'} to revision {after}")
    return ExitCode.OK
