"""`okrflow exporter`: serve /metrics from the database."""

from __future__ import annotations

import logging
import signal
import threading
from functools import partial
from types import FrameType

from prometheus_client import CollectorRegistry, start_http_server

from okrflow.exporter.collector import OkrCollector, refresh_forever
from okrflow.exporter.snapshot import read_snapshot
from okrflow.settings import Settings
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema

logger = logging.getLogger(__name__)


def run_exporter(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT. The first snapshot is taken before the port opens."""
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    collector = OkrCollector(partial(read_snapshot, engine))
    collector.refresh()
    registry = CollectorRegistry()
    registry.register(collector)
    server, thread = start_http_server(settings.exporter_port, settings.exporter_host, registry)
    logger.info("serving http://%s:%d/metrics", settings.exporter_host, server.server_address[1])
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    refresh_forever(collector, settings.exporter_refresh_seconds, stop)
    server.shutdown()
    thread.join(5)
    engine.dispose()
    return 0
