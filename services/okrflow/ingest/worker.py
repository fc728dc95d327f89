"""`okrflow worker`: run the stream processor until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import sys

import faust
from prometheus_client import CollectorRegistry, start_http_server

from okrflow.gctuning import collect_less_often
from okrflow.ingest.app import build_app
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.settings import Settings
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.topics import ensure_topics


def run_worker(settings: Settings) -> int:
    """Block until a signal stops the worker; the batch in flight is committed first."""
    engine = make_engine(settings.database_url, writer=True)
    ensure_schema(engine)
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, settings.exporter_host, registry)
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(ensure_topics(settings))
    app = build_app(settings, engine, metrics, reader=make_engine(settings.database_url))
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    collect_less_often()
    code: int | str | None = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:
        code = stopped.code
    fatal = app.okrflow_worker.fatal
    if fatal is not None:
        print(f"okrflow worker: {fatal}", file=sys.stderr)
        return fatal.exit_code
    return code if isinstance(code, int) else 1
