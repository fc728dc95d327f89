"""`okrflow backfill`: count, from the events topic, what key results added mid-period missed
(okrflow.backfill.command)."""

from __future__ import annotations

import argparse

from okrflow.cli.subcommands import Subcommands
from okrflow.settings import Settings


def register(sub: Subcommands) -> None:
    backfill = sub.add_parser(
        "backfill",
        help="count, from the events topic, what key results added mid-period missed",
    )
    backfill.add_argument("--shop", help="only this shop's backfills (exit 10 if it has no plan)")
    backfill.add_argument(
        "--wait", action="store_true",
        help="also wait for backfills another runner holds (taking them over if it stopped), "
        "until every one is done",
    )  # fmt: skip
    backfill.set_defaults(run=cmd_backfill)


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: faust, aiokafka and SQLAlchemy add 0.51 s to every okrflow start (--help too)
    from okrflow.backfill.command import run_backfill

    return run_backfill(settings, args.shop, args.wait)
