"""`okrflow emit FILE`: produce the events of a JSON-lines file (or stdin) to Kafka."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from okrflow.cli.subcommands import Subcommands
from okrflow.exitcodes import ExitCode
from okrflow.settings import Settings


def register(sub: Subcommands) -> None:
    emit = sub.add_parser("emit", help="produce events from a JSON-lines file ('-' for stdin)")
    emit.add_argument("file", help="a file of one CloudEvent (JSON) per line, or '-' for stdin")
    emit.set_defaults(run=cmd_emit)


def cmd_emit(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: aiokafka and faust add 0.27 s to every okrflow start (okrflow --help too)
    from okrflow.events.emit import emit_lines

    path: str = args.file
    # Read as bytes: a line that is not UTF-8 is reported and skipped like any other bad line.
    if path == "-":
        report = asyncio.run(emit_lines(settings, sys.stdin.buffer))
        name = "<stdin>"
    else:
        try:
            with Path(path).open("rb") as f:
                report = asyncio.run(emit_lines(settings, f))
        except OSError as exc:
            print(f"okrflow emit: {exc}", file=sys.stderr)
            return ExitCode.USAGE
        name = path
    for problem in report.problems:
        print(f"{name}:{problem} (line skipped)", file=sys.stderr)
    print(f"sent {report.sent} events to {settings.events_topic}, skipped {len(report.problems)}")
    return ExitCode.USAGE if report.problems else ExitCode.OK
