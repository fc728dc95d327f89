"""The `okrflow` command line (docs/cli.md): the top-level parser and `main`.

Each command lives in a module of this package, which registers its parser (`register...`)
and holds the command's body; `main` parses, builds the settings, runs the command and turns
what escaped it into one line on stderr and an exit code (okrflow.failures).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from okrflow.cli import backfill, credentials, db, emit, kafka, offsets, plans, reports, services
from okrflow.cli.subcommands import Subcommands
from okrflow.clipipe import quiet_broken_pipe
from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.failures import known_failure, setting_problem
from okrflow.ops.logs import setup_logging
from okrflow.settings import load_settings

# The settings a flag can set (each flag's dest is the setting's name).
SETTING_FLAGS = (
    "database_url", "kafka_bootstrap", "log_level",
    "worker_metrics_port", "worker_processes", "exporter_port", "exporter_host", "exporter_refresh_seconds",
    "intake_port", "intake_host",
)  # fmt: skip

# Every command, in the order `okrflow --help` lists them.
COMMANDS: tuple[Callable[[Subcommands], None], ...] = (
    kafka.register, db.register, emit.register, plans.register_apply,
    reports.register_progress, reports.register_history, backfill.register,
    plans.register_revisions, plans.register_validate, services.register_worker,
    services.register_exporter, offsets.register, services.register_intake,
    services.register_demo, credentials.register_tokens, credentials.register_webhooks,
)  # fmt: skip


class _VersionAction(argparse._VersionAction):
    """`--version`, the version read only when asked for."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        # lazy: prometheus_client and importlib.metadata add 0.02 s to every okrflow start
        from okrflow.ops.buildinfo import okrflow_version

        self.version = f"okrflow {okrflow_version()}"
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="okrflow",
        description=(
            "okrflow turns a shop's business events (CloudEvents on Kafka) into live OKR "
            "progress: the worker counts them into key results in a database, exactly once; "
            "the exporter serves progress, pace and status as Prometheus metrics. Settings "
            "come from OKRFLOW_* variables (README, 'Configuration'); flags override them."
        ),
        epilog="Exit codes: README, 'Exit codes'. Every command and flag: docs/cli.md.",
    )
    parser.add_argument(
        "--database-url",
        help="the database to use, SQLite or PostgreSQL "
        "(default: $OKRFLOW_DATABASE_URL or sqlite:///okrflow.db)",
    )
    parser.add_argument(
        "--kafka-bootstrap",
        help="Kafka brokers to connect to, host:port "
        "(default: $OKRFLOW_KAFKA_BOOTSTRAP or 127.0.0.1:9092)",
    )
    parser.add_argument(
        "--log-level", help="how much to log: DEBUG, INFO, WARNING, ERROR (default: INFO)"
    )
    parser.add_argument("--version", action=_VersionAction, help="print okrflow's version and exit")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (each has --help)"
    )
    for register in COMMANDS:
        register(sub)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Each subcommand's --help opens with the sentence `okrflow --help` lists it with."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, subparser in action.choices.items():
                subparser.description = subparser.description or helps.get(name)
                _describe(subparser)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    action = getattr(args, "action", None)
    where = f"okrflow {args.command}" + (f" {action}" if isinstance(action, str) else "")
    try:
        settings = load_settings(**{k: getattr(args, k, None) for k in SETTING_FLAGS})
    except ValueError as exc:  # pydantic's ValidationError and SettingsError are ValueErrors
        print(f"okrflow: bad setting: {setting_problem(exc, SETTING_FLAGS)}", file=sys.stderr)
        return ExitCode.USAGE
    setup_logging(settings.log_level, settings.log_format)
    try:
        code: int = quiet_broken_pipe(lambda: args.run(settings, args))
        return code
    except OperatorError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        code, line = known_failure(exc)
        logging.getLogger("okrflow").debug("%s failed", where, exc_info=True)
        print(f"{where}: {line}", file=sys.stderr)
        return code
