"""`okrflow worker`: run the stream processor until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.gctuning import collect_less_often
from okrflow.ingest.app import build_app
from okrflow.ingest.health import WorkerHealth
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.ops.buildinfo import process_registry
from okrflow.ops.http import OpsServer, Reply, ops_limits
from okrflow.ops.startup import wait_for_database, wait_for_kafka
from okrflow.settings import Settings
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.topics import TopicLayoutError, ensure_topics

logger = logging.getLogger(__name__)


class _Worker(faust.Worker):
    """faust's worker, logging through the handler okrflow installed (okrflow.ops.logs), with
    no terminal spinner (its cursor escapes would land in the logs), whose stop on a signal
    takes at most `stop_seconds`."""

    def __init__(self, *args: Any, stop_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None
        self.stop_seconds = stop_seconds

    def _setup_logging(self) -> None:
        pass

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if not self._signal_stop_time:
            exit_after(self.stop_seconds)
        super()._schedule_shutdown(signal)


def exit_after(seconds: float) -> threading.Timer:
    """End this process with STOP_TIMED_OUT if it is still running `seconds` from now.

    A graceful stop commits the batch in flight or abandons it; either is safe, since the
    database's applied offsets (not Kafka's) are where the partitions resume. So a stop that
    waits on a broker or a database that does not answer (or on a rebalance, or on a thread
    at exit) is cut short instead of holding its partitions and its place in the group."""

    def give_up() -> None:
        logger.error(
            "still stopping after %.0f s (OKRFLOW_WORKER_STOP_SECONDS): exiting now; the batch "
            "in flight, if any, is consumed again by the next owner of its partitions",
            seconds,
        )
        logging.shutdown()
        os._exit(int(ExitCode.STOP_TIMED_OUT))

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()
    return timer


def wait_for_services(settings: Settings) -> Engine:
    """The writing engine, once the database (with a current schema) and Kafka (with topics
    okrflow can use) answer; an operator error otherwise (okrflow.ops.startup)."""
    engine = wait_for_database(settings, lambda url: make_engine(url, writer=True), ensure_schema)
    try:
        asyncio.run(wait_for_kafka(settings, lambda: ensure_topics(settings)))
    except TopicLayoutError as exc:
        raise OperatorError(ExitCode.KAFKA_LAYOUT, str(exc)) from None
    return engine


def run_worker(settings: Settings) -> int:
    """Block until a signal stops the worker; the batch in flight is committed first.

    Start-up waits for the database and Kafka (okrflow.ops.startup); a stop on purpose exits
    with the WorkerFatal's code and line."""
    engine = wait_for_services(settings)
    registry = process_registry("worker")
    metrics = PipelineMetrics(registry)
    reader = make_engine(settings.database_url)
    health = WorkerHealth(settings, reader)
    server = None
    if settings.worker_metrics_port:
        server = OpsServer(
            settings.worker_metrics_host, settings.worker_metrics_port,
            {
                "/metrics": lambda: Reply(200, [generate_latest(registry)], CONTENT_TYPE_LATEST),
                "/healthz": health.healthz,
                "/readyz": health.readyz,
            },
            what="worker's /metrics", setting="--metrics-port / OKRFLOW_WORKER_METRICS_PORT",
            limits=ops_limits(settings),
        )  # fmt: skip
        server.start()
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings, engine, metrics, reader=reader)
    app.on_partitions_assigned.connect(health.on_assigned)
    app.on_partitions_revoked.connect(health.on_revoked)
    ingest = app.okrflow_worker
    health.stopping_because = lambda: None if ingest.fatal is None else str(ingest.fatal)
    worker = _Worker(
        app, loglevel=settings.log_level, quiet=True, stop_seconds=settings.worker_stop_seconds
    )
    collect_less_often()
    code: int | str | None = ExitCode.OK
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:
        code = stopped.code
    finally:
        if server is not None:
            server.stop()
    fatal = app.okrflow_worker.fatal
    if fatal is not None:
        raise OperatorError(ExitCode(fatal.exit_code), str(fatal))
    return code if isinstance(code, int) else ExitCode.FAILED
