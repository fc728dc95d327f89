"""`okrflow offsets show|reset`: the database's applied offsets against the events topic's
log (okrflow.ingest.offsets)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from okrflow.cli.subcommands import Subcommands
from okrflow.exitcodes import ExitCode
from okrflow.failures import cannot_read_from_kafka
from okrflow.settings import Settings


def register(sub: Subcommands) -> None:
    offsets = sub.add_parser(
        "offsets", help="the database's applied offsets against the events topic's log"
    )
    offsets.add_argument(
        "action", choices=["show", "reset"],
        help="show (read only) or reset the offsets past the log's end",
    )  # fmt: skip
    offsets.add_argument(
        "--to", choices=["log-start", "log-end"], default="log-start",
        help="reset to the log's start (count what the topic holds) or end (count what comes next)",
    )  # fmt: skip
    offsets.add_argument(
        "--partition", type=int, action="append",
        help="reset this partition (repeatable; default: those past the log's end)",
    )  # fmt: skip
    offsets.set_defaults(run=cmd_offsets)


def cmd_offsets(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: faust, aiokafka, SQLAlchemy and Alembic add 0.4 s to every okrflow start
    from aiokafka.errors import KafkaError

    from okrflow.ingest import offsets
    from okrflow.readonly import open_for_reading
    from okrflow.store.engine import make_engine
    from okrflow.store.schema import ensure_schema

    topic = settings.events_topic
    try:
        bounds = asyncio.run(offsets.log_bounds(settings, topic))
    except KafkaError as exc:
        raise cannot_read_from_kafka(settings, exc) from None
    if args.action == "show":  # read only: never creates or upgrades the database
        engine = open_for_reading(settings.database_url)
    else:
        engine = make_engine(settings.database_url, writer=True)
        ensure_schema(engine)
    if not bounds:
        print(f"okrflow offsets: topic {topic} does not exist on {settings.kafka_bootstrap}",
              file=sys.stderr)  # fmt: skip
        return ExitCode.NOT_FOUND
    compared = offsets.compare(engine, topic, bounds)
    if args.action == "show":
        for o in compared:
            applied = "-" if o.applied is None else str(o.applied)
            note = "  PAST THE LOG'S END" if o.ahead_of_log else ""
            print(
                f"{topic}[{o.partition}]: database {applied}, log {o.log_start}..{o.log_end}{note}"
            )
        return ExitCode.OK
    wanted = set(args.partition) if args.partition else None
    changes = offsets.reset(engine, topic, compared, args.to, wanted)
    if not changes:
        print(f"{topic}: no partition's database offset is past the log's end; nothing reset")
    for before, new in changes:
        print(f"{topic}[{before.partition}]: database offset {before.applied} -> {new}")
    if changes:
        asyncio.run(
            offsets.mark_dead_letters_reset(
                settings, topic, settings.dlq_topic,
                [before.partition for before, _ in changes],
            )
        )  # fmt: skip
        print(f"{settings.dlq_topic}: reset marker written to the reset partitions")
    return ExitCode.OK
