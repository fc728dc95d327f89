"""`okrflow kafka start|stop|status|fetch`: the local development broker (okrflow.devkafka)."""

from __future__ import annotations

import argparse
import sys

from okrflow.cli.subcommands import Subcommands
from okrflow.devkafka import LocalKafka
from okrflow.devkafka.broker import KafkaPortHeld, LocalKafkaError
from okrflow.exitcodes import ExitCode
from okrflow.settings import Settings


def register(sub: Subcommands) -> None:
    kafka = sub.add_parser("kafka", help="a local single-node Kafka for development")
    kafka.add_argument(
        "action", choices=["start", "stop", "status", "fetch"],
        help="start or stop the broker, show its status, or fetch its jars",
    )  # fmt: skip
    kafka.set_defaults(run=cmd_kafka)


def local_kafka(settings: Settings) -> LocalKafka:
    """The broker the settings describe (`okrflow kafka`, `okrflow demo`)."""
    return LocalKafka(
        deploy_dir=settings.kafka_deploy_dir,
        cache_dir=settings.kafka_cache_dir,
        run_dir=settings.kafka_run_dir
        or settings.kafka_cache_dir / f"broker-{settings.kafka_port}",
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
    )


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
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
