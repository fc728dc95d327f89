"""The plan files' commands: `okrflow apply`, `okrflow validate`, `okrflow revisions`
(their bodies are okrflow.plans.command's and okrflow.plans.revisions')."""

from __future__ import annotations

import argparse
import sys

from okrflow.cli.subcommands import Subcommands
from okrflow.plans.revisions import run_list, run_show
from okrflow.retention import events_retention
from okrflow.settings import Settings


def register_apply(sub: Subcommands) -> None:
    apply = sub.add_parser("apply", help="make the database match objectives files (okrs.yaml)")
    apply.add_argument("files", nargs="+", metavar="FILE", help="plan files, one per shop")
    apply.add_argument(
        "--dry-run", action="store_true",
        help="print the changes (old -> new values), write nothing; works with no database",
    )  # fmt: skip
    apply.add_argument(
        "--detailed-exitcode", action="store_true",
        help="with --dry-run: exit 0 when nothing would change, 4 when something would, "
        "2 for a refused file",
    )  # fmt: skip
    apply.add_argument(
        "--yes", action="store_true",
        help="retire objectives and key results no longer in the files without asking "
        "(required when stdin is not a terminal)",
    )  # fmt: skip
    apply.set_defaults(run=cmd_apply)


def cmd_apply(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: SQLAlchemy and msgspec add 0.25 s to every okrflow start (okrflow --help too)
    from okrflow.plans.command import ask_on_terminal, run_apply, run_dry_run

    retention = events_retention(settings)
    if args.dry_run:
        return run_dry_run(settings.database_url, args.files, args.detailed_exitcode, retention)
    ask = ask_on_terminal if sys.stdin.isatty() else None
    return run_apply(
        settings.database_url, args.files, args.yes, ask, retention, settings.events_topic
    )


def register_validate(sub: Subcommands) -> None:
    validate = sub.add_parser(
        "validate", help="check plan files offline, with no database (exit 0 good, 2 problems)"
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="plan files to check")
    validate.set_defaults(run=cmd_validate)


def cmd_validate(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: SQLAlchemy and msgspec add 0.25 s to every okrflow start (okrflow --help too)
    from okrflow.plans.command import run_validate

    return run_validate(args.files, events_retention(settings))


def register_revisions(sub: Subcommands) -> None:
    revisions = sub.add_parser(
        "revisions", help="the plans `apply` wrote: list them, show one's changes and file"
    )
    actions = revisions.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="list or show"
    )
    listing = actions.add_parser(
        "list", help="every revision, newest first: id, shop, when (UTC), its changes"
    )
    listing.add_argument("--shop", help="only this shop's revisions (exit 10 if none)")
    listing.add_argument(
        "--format", choices=["table", "json"], default="table",
        help="a table for people (default) or JSON for scripts",
    )  # fmt: skip
    show = actions.add_parser(
        "show", help="one revision's changes and the plan file as it was applied"
    )
    show.add_argument(
        "id", help="the revision's id (see `okrflow revisions list`; exit 10 if unknown)"
    )
    show.add_argument(
        "--format", choices=["text", "json"], default="text",
        help="text for people (default) or JSON for scripts",
    )  # fmt: skip
    show.add_argument(
        "--source-only", action="store_true",
        help="print only the plan file, byte for byte (`> okrs.yaml` restores it)",
    )  # fmt: skip
    revisions.set_defaults(run=cmd_revisions)


def cmd_revisions(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        return run_list(settings.database_url, args.shop, args.format)
    return run_show(settings.database_url, args.id, args.format, args.source_only)
