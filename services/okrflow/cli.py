"""The `okrflow` command line (docs/cli.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from okrflow.exitcodes import ExitCode
from okrflow.settings import Settings, load_settings

if TYPE_CHECKING:
    from okrflow.devkafka import LocalKafka


def local_kafka(settings: Settings) -> LocalKafka:
    from okrflow.devkafka import LocalKafka

    return LocalKafka(
        deploy_dir=settings.kafka_deploy_dir,
        cache_dir=settings.kafka_cache_dir,
        run_dir=settings.kafka_run_dir
        or settings.kafka_cache_dir / f"broker-{settings.kafka_port}",
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
    )


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.devkafka.broker import KafkaPortHeld, LocalKafkaError

    kafka = local_kafka(settings)
    try:
        if args.action == "fetch":
            print(f"Kafka jars in {kafka.fetch_jars()}")
        elif args.action == "start":
            if kafka.start(settings.kafka_start_timeout):
                print(f"Kafka started on {kafka.bootstrap} (log: {kafka.log_file})")
            else:
                print(f"Kafka is already running on {kafka.bootstrap} (pid {kafka.status().pid})")
        elif args.action == "stop":
            if kafka.stop():
                print(f"Kafka on {kafka.bootstrap} stopped")
            else:
                print(f"Kafka on {kafka.bootstrap} is not running: nothing to stop")
        else:
            return _kafka_status(kafka)
    except KafkaPortHeld as exc:
        print(f"okrflow kafka {args.action}: {exc}", file=sys.stderr)
        return ExitCode.PORT_IN_USE
    except LocalKafkaError as exc:
        print(f"okrflow kafka {args.action}: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK


def _kafka_status(kafka: LocalKafka) -> int:
    """`kafka status`: 0 when okrflow's broker runs and answers on its port; NOT_RUNNING
    when it does not run (saying who else holds the port); PORT_IN_USE when it runs but
    another process holds its port; FAILED when it runs and does not answer."""
    status = kafka.status()
    held = "" if status.holder is None else f"; the port is held by {status.holder.describe()}"
    if not status.running:
        print(f"Kafka on {kafka.bootstrap}: not running{held}")
        return ExitCode.NOT_RUNNING
    if status.holder is not None:
        print(f"Kafka on {kafka.bootstrap}: pid {status.pid} runs but does not listen{held}")
        return ExitCode.PORT_IN_USE
    state = "running, answering" if status.reachable else "running, NOT answering"
    print(f"Kafka on {kafka.bootstrap}: {state} (pid {status.pid}, log {kafka.log_file})")
    return ExitCode.OK if status.reachable else ExitCode.FAILED


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.store.engine import make_engine
    from okrflow.store.schema import upgrade

    before, after = upgrade(make_engine(settings.database_url))
    if before == after:
        print(f"database already at revision {after}")
    else:
        print(f"database upgraded from {before or 'empty'} to revision {after}")
    return 0


def cmd_emit(settings: Settings, args: argparse.Namespace) -> int:
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
            return 2
        name = path
    for problem in report.problems:
        print(f"{name}:{problem} (line skipped)", file=sys.stderr)
    print(f"sent {report.sent} events to {settings.events_topic}, skipped {len(report.problems)}")
    return 2 if report.problems else 0


def cmd_apply(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.plans.command import ask_on_terminal, run_apply, run_dry_run
    from okrflow.retention import events_retention

    retention = events_retention(settings)
    if args.dry_run:
        return run_dry_run(settings.database_url, args.files, args.detailed_exitcode, retention)
    ask = ask_on_terminal if sys.stdin.isatty() else None
    return run_apply(
        settings.database_url, args.files, args.yes, ask, retention, settings.events_topic
    )


def cmd_validate(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.plans.command import run_validate
    from okrflow.retention import events_retention

    return run_validate(args.files, events_retention(settings))


def cmd_progress(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.reports.command import run_progress

    return run_progress(settings.database_url, args.shop, args.at, args.format, args.as_of)


def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.reports.command import run_history

    return run_history(
        settings.database_url, args.shop, args.objective, args.key_result, args.first,
        args.last, args.format,
    )  # fmt: skip


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.backfill.command import run_backfill

    return run_backfill(settings, args.shop, args.wait)


def cmd_revisions(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.plans.revisions import run_list, run_show

    if args.action == "list":
        return run_list(settings.database_url, args.shop, args.format)
    return run_show(settings.database_url, args.id, args.format, args.source_only)


def cmd_offsets(settings: Settings, args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from okrflow.ingest import offsets
    from okrflow.store.engine import make_engine
    from okrflow.store.schema import ensure_schema

    topic = settings.events_topic
    try:
        bounds = asyncio.run(offsets.log_bounds(settings, topic))
    except KafkaError as exc:
        from okrflow.exitcodes import ExitCode, OperatorError
        from okrflow.ops.startup import one_line

        raise OperatorError(
            ExitCode.KAFKA_UNREACHABLE,
            f"cannot read {topic} from Kafka at {settings.kafka_bootstrap}: {one_line(exc)}",
        ) from None
    if args.action == "show":  # read only: never creates or upgrades the database
        from okrflow.readonly import open_for_reading

        engine = open_for_reading(settings.database_url)
    else:
        engine = make_engine(settings.database_url, writer=True)
        ensure_schema(engine)
    if not bounds:
        print(f"okrflow offsets: topic {topic} does not exist on {settings.kafka_bootstrap}",
              file=sys.stderr)  # fmt: skip
        from okrflow.exitcodes import ExitCode

        return ExitCode.NOT_FOUND
    compared = offsets.compare(engine, topic, bounds)
    if args.action == "show":
        for o in compared:
            applied = "-" if o.applied is None else str(o.applied)
            note = "  PAST THE LOG'S END" if o.ahead_of_log else ""
            print(
                f"{topic}[{o.partition}]: database {applied}, log {o.log_start}..{o.log_end}{note}"
            )
        return 0
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
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.ingest.supervisor import run_workers

    return run_workers(settings)


def cmd_exporter(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.exporter.server import run_exporter

    return run_exporter(settings)


def cmd_intake(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.intake.server import run_intake

    return run_intake(settings)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from okrflow.demo import run_demo

    return run_demo(settings, local_kafka(settings), max_seconds=args.seconds)


def _credentials_store(
    settings: Settings, args: argparse.Namespace, where: str, read_only: bool = False
) -> int:
    """Open the database (upgrading an empty one; `read_only`: an existing one, unchanged)
    and run `args.store_action` on it; the database's errors are one line."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

    from okrflow.exitcodes import ExitCode
    from okrflow.ops.startup import one_line
    from okrflow.store.engine import make_engine
    from okrflow.store.schema import SchemaOutdated, ensure_schema

    try:
        if read_only:
            from okrflow.readonly import open_for_reading

            engine = open_for_reading(settings.database_url)
        else:
            engine = make_engine(settings.database_url, writer=True)
            ensure_schema(engine)
        code: int = args.store_action(engine)
    except SchemaOutdated as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return ExitCode.SCHEMA_MISMATCH
    except (DBAPIError, ArgumentError, NoSuchModuleError) as exc:  # cannot connect, bad URL
        print(f"{where}: database error: {one_line(exc)}", file=sys.stderr)
        return ExitCode.DATABASE_UNREACHABLE
    except SQLAlchemyError as exc:
        print(f"{where}: database error: {one_line(exc)}", file=sys.stderr)
        return ExitCode.FAILED
    return code


def cmd_tokens(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sqlalchemy import Engine

    from okrflow.intake import credentials

    where = f"okrflow tokens {args.action}"
    # Arguments are checked before the database is opened: a typo creates no database.
    try:
        if args.shop is not None:
            credentials.check_shop(args.shop)
        if args.action == "create":
            credentials.check_name(args.name)
        token_id = 0
        if args.action == "revoke":
            if not (args.id.isascii() and args.id.isdigit()) or int(args.id) >= 2**31:
                raise ValueError(f"token id {args.id!r}: not a token id (see `tokens list`)")
            token_id = int(args.id)
    except ValueError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return 2

    def _utc_text(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def create(engine: Engine) -> int:
        new_id, token = credentials.create_token(engine, args.shop, args.name, datetime.now(UTC))
        print(f"token {new_id}, shop {args.shop}, name {args.name or '-'}: "
              "shown once; store it now")  # fmt: skip
        print(token)  # alone on the last line, for scripts
        return 0

    def list_(engine: Engine) -> int:
        rows = credentials.list_tokens(engine, args.shop)
        for row in rows:
            state = "active" if row.revoked_at is None else f"revoked {_utc_text(row.revoked_at)}"
            print(f"{row.id}\t{row.shop}\t{row.name or '-'}\t"
                  f"created {_utc_text(row.created_at)}\t{state}")  # fmt: skip
        if not rows:
            print(f"{where}: no tokens" + (f" for shop {args.shop}" if args.shop else ""),
                  file=sys.stderr)  # fmt: skip
        return 0

    def revoke(engine: Engine) -> int:
        if not credentials.revoke_token(engine, token_id, datetime.now(UTC)):
            print(f"{where}: no active token {token_id} (unknown or already revoked)",
                  file=sys.stderr)  # fmt: skip
            return 2
        print(f"token {token_id} revoked")
        return 0

    args.store_action = {"create": create, "list": list_, "revoke": revoke}[args.action]
    return _credentials_store(settings, args, where, read_only=args.action == "list")


def _read_secret() -> str:
    """The secret from stdin, without its trailing line break; typed without echo on a
    terminal. ValueError if it is not UTF-8 or implausibly long."""
    if sys.stdin.isatty():
        import getpass

        try:
            return getpass.getpass("webhook secret (not echoed): ")
        except EOFError:
            return ""
    limit = 64 * 1024
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"the secret is longer than {limit} bytes")
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"the secret is not UTF-8 text: {exc.reason}") from None
    text = text.removesuffix("\n")
    return text.removesuffix("\r")


def cmd_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sqlalchemy import Engine

    from okrflow.intake import credentials

    where = f"okrflow webhooks {args.action}"
    try:
        credentials.check_shop(args.shop)
        credentials.check_platform(args.platform)
        secret = _read_secret()
        credentials.check_secret(secret)
    except ValueError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return 2

    def set_secret(engine: Engine) -> int:
        credentials.set_webhook_secret(engine, args.shop, args.platform, secret, datetime.now(UTC))
        print(f"webhook secret stored for shop {args.shop}, platform {args.platform}")
        return 0

    args.store_action = set_secret
    return _credentials_store(settings, args, where)


def _version() -> str:
    from okrflow.ops.buildinfo import okrflow_version

    return okrflow_version()


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
    parser.add_argument(
        "--version", action="version", version=f"okrflow {_version()}",
        help="print okrflow's version and exit",
    )  # fmt: skip
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (each has --help)"
    )

    kafka = sub.add_parser("kafka", help="a local single-node Kafka for development")
    kafka.add_argument(
        "action", choices=["start", "stop", "status", "fetch"],
        help="start or stop the broker, show its status, or fetch its jars",
    )  # fmt: skip
    kafka.set_defaults(run=cmd_kafka)

    db = sub.add_parser("db", help="database schema")
    db.add_argument(
        "action", choices=["upgrade"], help="upgrade: apply every pending schema migration"
    )
    db.set_defaults(run=cmd_db)

    emit = sub.add_parser("emit", help="produce events from a JSON-lines file ('-' for stdin)")
    emit.add_argument("file", help="a file of one CloudEvent (JSON) per line, or '-' for stdin")
    emit.set_defaults(run=cmd_emit)

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

    revisions = sub.add_parser(
        "revisions", help="the plans `apply` wrote: list them, show one's changes and file"
    )
    revisions_actions = revisions.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="list or show"
    )
    revisions_list = revisions_actions.add_parser(
        "list", help="every revision, newest first: id, shop, when (UTC), its changes"
    )
    revisions_list.add_argument("--shop", help="only this shop's revisions (exit 10 if none)")
    revisions_list.add_argument(
        "--format", choices=["table", "json"], default="table",
        help="a table for people (default) or JSON for scripts",
    )  # fmt: skip
    revisions_show = revisions_actions.add_parser(
        "show", help="one revision's changes and the plan file as it was applied"
    )
    revisions_show.add_argument(
        "id", help="the revision's id (see `okrflow revisions list`; exit 10 if unknown)"
    )
    revisions_show.add_argument(
        "--format", choices=["text", "json"], default="text",
        help="text for people (default) or JSON for scripts",
    )  # fmt: skip
    revisions_show.add_argument(
        "--source-only", action="store_true",
        help="print only the plan file, byte for byte (`> okrs.yaml` restores it)",
    )  # fmt: skip
    revisions.set_defaults(run=cmd_revisions)

    validate = sub.add_parser(
        "validate", help="check plan files offline, with no database (exit 0 good, 2 problems)"
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="plan files to check")
    validate.set_defaults(run=cmd_validate)

    worker = sub.add_parser("worker", help="run the stream processor until SIGTERM")
    worker.add_argument(
        "--metrics-port", type=int, dest="worker_metrics_port",
        help="serve the worker's /metrics, /healthz and /readyz on this port (0: not served); "
        "with N processes, process i (0..N-1) serves on this port + i",
    )  # fmt: skip
    worker.add_argument(
        "--processes", type=int, dest="worker_processes", metavar="N",
        help="worker processes in the consumer group under one supervisor (default: one per "
        "core; 1: a single process, no supervisor)",
    )  # fmt: skip
    worker.set_defaults(run=cmd_worker)

    exporter = sub.add_parser("exporter", help="serve /metrics from the database")
    exporter.add_argument(
        "--port", type=int, dest="exporter_port", help="port to serve /metrics on (default 9464)"
    )
    exporter.add_argument(
        "--host", dest="exporter_host", help="address to listen on (default 127.0.0.1)"
    )
    exporter.add_argument(
        "--refresh", type=float, dest="exporter_refresh_seconds",
        help="seconds between reads of the database (default 2)",
    )  # fmt: skip
    exporter.set_defaults(run=cmd_exporter)

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

    intake = sub.add_parser("intake", help="HTTP intake: CloudEvents and platform webhooks")
    intake.add_argument(
        "--port", type=int, dest="intake_port", help="port to listen on (default 8080)"
    )
    intake.add_argument(
        "--host", dest="intake_host", help="address to listen on (default 127.0.0.1)"
    )
    intake.set_defaults(run=cmd_intake)

    demo = sub.add_parser(
        "demo", help="Kafka, SQLite, worker, exporter and two simulated shops, until Ctrl-C"
    )
    demo.add_argument(
        "--seconds", type=float, help="stop by itself after this many seconds (default: never)"
    )
    demo.set_defaults(run=cmd_demo)

    tokens = sub.add_parser("tokens", help="API tokens shops send events with (HTTP intake)")
    tokens_actions = tokens.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="create, list or revoke"
    )
    tokens_create = tokens_actions.add_parser(
        "create", help="create a token for a shop; it is printed once, on the last line"
    )
    tokens_create.add_argument("--shop", required=True, help="the shop the token sends for")
    tokens_create.add_argument("--name", help="what the token is for, e.g. 'checkout'")
    tokens_list = tokens_actions.add_parser("list", help="tokens and their state, never a token")
    tokens_list.add_argument("--shop", help="only this shop's tokens")
    tokens_revoke = tokens_actions.add_parser(
        "revoke", help="revoke a token by id: refused within the intake's cache time"
    )
    tokens_revoke.add_argument("id", help="the token's id (see `okrflow tokens list`)")
    tokens_revoke.set_defaults(shop=None)
    tokens.set_defaults(run=cmd_tokens)

    webhooks = sub.add_parser("webhooks", help="secrets platforms sign a shop's webhooks with")
    webhooks_actions = webhooks.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="set-secret"
    )
    set_secret = webhooks_actions.add_parser(
        "set-secret", help="store a shop's webhook secret for a platform, read from stdin"
    )
    set_secret.add_argument("--shop", required=True, help="the shop the webhooks are for")
    set_secret.add_argument("--platform", required=True, help="shopify or stripe")
    webhooks.set_defaults(run=cmd_webhooks)
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


_SETTING_FLAGS = (
    "database_url", "kafka_bootstrap", "log_level",
    "worker_metrics_port", "worker_processes", "exporter_port", "exporter_host", "exporter_refresh_seconds",
    "intake_port", "intake_host",
)  # fmt: skip


def _setting_problem(exc: Exception) -> str:
    """One line for a bad setting, naming its flag and variable."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):  # pydantic-settings' SettingsError: a bad JSON value
        return str(exc).splitlines()[0]
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        flag = f"--{name.replace('_', '-')} / " if name in _SETTING_FLAGS else ""
        shown = error.get("input")
        value = f" {shown!r}" if isinstance(shown, str | int | float) else ""
        problems.append(f"{flag}OKRFLOW_{name.upper()}{value}: {error['msg']}")
    return "; ".join(problems)


def main(argv: Sequence[str] | None = None) -> int:
    from okrflow.exitcodes import ExitCode, OperatorError
    from okrflow.ops.logs import setup_logging

    args = build_parser().parse_args(argv)
    action = getattr(args, "action", None)
    where = f"okrflow {args.command}" + (f" {action}" if isinstance(action, str) else "")
    try:
        settings = load_settings(**{k: getattr(args, k, None) for k in _SETTING_FLAGS})
    except ValueError as exc:  # pydantic's ValidationError and SettingsError are ValueErrors
        print(f"okrflow: bad setting: {_setting_problem(exc)}", file=sys.stderr)
        return ExitCode.USAGE
    setup_logging(settings.log_level, settings.log_format)
    try:
        from okrflow.clipipe import quiet_broken_pipe

        code: int = quiet_broken_pipe(lambda: args.run(settings, args))
        return code
    except OperatorError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        code, line = _known_failure(exc)
        logging.getLogger("okrflow").debug("%s failed", where, exc_info=True)
        print(f"{where}: {line}", file=sys.stderr)
        return code


def _known_failure(exc: Exception) -> tuple[int, str]:
    """The exit code and one line for an exception that escaped a command."""
    from aiokafka.errors import KafkaError
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from okrflow.exitcodes import ExitCode
    from okrflow.ops.startup import one_line
    from okrflow.store.schema import SchemaOutdated

    if isinstance(exc, SchemaOutdated):
        return ExitCode.SCHEMA_MISMATCH, str(exc)
    if isinstance(exc, DBAPIError):
        return ExitCode.DATABASE_UNREACHABLE, f"database error: {one_line(exc)}"
    if isinstance(exc, KafkaError):
        return ExitCode.KAFKA_UNREACHABLE, f"Kafka error: {one_line(exc)}"
    if isinstance(exc, SQLAlchemyError | OSError):
        return ExitCode.FAILED, f"{type(exc).__name__}: {one_line(exc)}"
    return ExitCode.FAILED, (
        f"unexpected {type(exc).__name__}: {one_line(exc)} (run with --log-level DEBUG for the "
        "traceback, and please report it)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
