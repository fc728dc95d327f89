"""The reports' commands: `okrflow progress` and `okrflow history` (okrflow.reports.command)."""

from __future__ import annotations

import argparse

from okrflow.cli.subcommands import Subcommands
from okrflow.settings import Settings


def register_progress(sub: Subcommands) -> None:
    progress = sub.add_parser("progress", help="progress, pace and status of every objective")
    progress.add_argument("--shop", help="only this shop (exit 10 if it has no plan)")
    when = progress.add_mutually_exclusive_group()
    when.add_argument("--at", help="judge pace and status as if now were this ISO 8601 time")
    when.add_argument(
        "--as-of", metavar="DATE",
        help="values as they stood at the end of this local day (YYYY-MM-DD, each shop's time "
        "zone): events up to then, pace and status judged then",
    )  # fmt: skip
    progress.add_argument(
        "--format", choices=["table", "json"], default="table",
        help="a table for people (default) or JSON for scripts",
    )  # fmt: skip
    progress.set_defaults(run=cmd_progress)


def cmd_progress(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: SQLAlchemy, Alembic and msgspec add 0.30 s to every okrflow start (--help too)
    from okrflow.reports.command import run_progress

    return run_progress(settings.database_url, args.shop, args.at, args.format, args.as_of)


def register_history(sub: Subcommands) -> None:
    history = sub.add_parser(
        "history", help="the daily burn-up: each objective and key result at the end of each day"
    )
    history.add_argument("--shop", required=True, help="the shop (exit 10 if it has no plan)")
    history.add_argument("--objective", help="only this objective (exit 10 if unknown)")
    history.add_argument("--key-result", help="only this key result (exit 10 if unknown)")
    history.add_argument(
        "--from", dest="first", metavar="DATE",
        help="first local day shown (YYYY-MM-DD; default: the period's start)",
    )  # fmt: skip
    history.add_argument(
        "--to", dest="last", metavar="DATE",
        help="last local day shown (YYYY-MM-DD; default: today, or the period's end)",
    )  # fmt: skip
    history.add_argument(
        "--format", choices=["table", "csv", "json"], default="table",
        help="a table for people (default), CSV or JSON for scripts",
    )  # fmt: skip
    history.set_defaults(run=cmd_history)


def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: SQLAlchemy, Alembic and msgspec add 0.30 s to every okrflow start (--help too)
    from okrflow.reports.command import run_history

    return run_history(
        settings.database_url, args.shop, args.objective, args.key_result, args.first,
        args.last, args.format,
    )  # fmt: skip
