"""`okrflow exporter`: serve /metrics from the database."""

from __future__ import annotations

import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from okrflow.exporter.collector import OkrCollector, ScrapeGate, refresh_forever
from okrflow.exporter.snapshot import SnapshotReader
from okrflow.gctuning import collect_less_often
from okrflow.settings import Settings
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema

logger = logging.getLogger(__name__)


def make_handler(
    registry: CollectorRegistry, collector: OkrCollector
) -> type[BaseHTTPRequestHandler]:
    class MetricsHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "only /metrics here")
                return
            renderer = collector.renderer  # one consistent snapshot per scrape
            with collector.gate:
                chunks = [generate_latest(registry)]
                if renderer is not None:
                    chunks += renderer.render_chunks()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(sum(map(len, chunks))))
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(chunk)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

    return MetricsHandler


def run_exporter(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT. The first snapshot is taken before the port opens."""
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    gate = ScrapeGate()
    reader = SnapshotReader(engine, gate.checkpoint)
    collector = OkrCollector(reader, gate, reader.forget)
    collector.refresh()
    collect_less_often()
    registry = CollectorRegistry()
    registry.register(collector)
    server = ThreadingHTTPServer(
        (settings.exporter_host, settings.exporter_port), make_handler(registry, collector)
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
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
