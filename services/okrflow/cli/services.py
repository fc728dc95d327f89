"""The long-running commands: `okrflow worker`, `exporter`, `intake` and `demo`."""

from __future__ import annotations

import argparse

from okrflow.cli.kafka import local_kafka
from okrflow.cli.subcommands import Subcommands
from okrflow.ingest.supervisor import run_workers
from okrflow.settings import Settings


def register_worker(sub: Subcommands) -> None:
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


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    return run_workers(settings)


def register_exporter(sub: Subcommands) -> None:
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


def cmd_exporter(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: prometheus_client, SQLAlchemy and aiokafka add 0.36 s to every okrflow start
    from okrflow.exporter.server import run_exporter

    return run_exporter(settings)


def register_intake(sub: Subcommands) -> None:
    intake = sub.add_parser("intake", help="HTTP intake: CloudEvents and platform webhooks")
    intake.add_argument(
        "--port", type=int, dest="intake_port", help="port to listen on (default 8080)"
    )
    intake.add_argument(
        "--host", dest="intake_host", help="address to listen on (default 127.0.0.1)"
    )
    intake.set_defaults(run=cmd_intake)


def cmd_intake(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: starlette, uvicorn, faust and SQLAlchemy add 0.55 s to every okrflow start
    from okrflow.intake.server import run_intake

    return run_intake(settings)


def register_demo(sub: Subcommands) -> None:
    demo = sub.add_parser(
        "demo", help="Kafka, SQLite, worker, exporter and two simulated shops, until Ctrl-C"
    )
    demo.add_argument(
        "--seconds", type=float, help="stop by itself after this many seconds (default: never)"
    )
    demo.set_defaults(run=cmd_demo)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    # lazy: faust, aiokafka, SQLAlchemy and Alembic add 0.97 s to every okrflow start
    from okrflow.demo import run_demo

    return run_demo(settings, local_kafka(settings), max_seconds=args.seconds)
