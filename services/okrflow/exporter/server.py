"""`okrflow exporter`: serve /metrics from the database, with /healthz and /readyz, and the
pages for people (`okrflow.exporter.pages`: /, /shops/...) from the same snapshot."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from okrflow.exitcodes import ExitCode
from okrflow.exporter.collector import OkrCollector, ScrapeGate, refresh_forever
from okrflow.exporter.pages.routes import pages_for, static_routes
from okrflow.exporter.snapshot import SnapshotReader
from okrflow.gctuning import collect_less_often
from okrflow.ops.buildinfo import process_registry
from okrflow.ops.http import OpsServer, ops_limits
from okrflow.ops.routes import Reply, json_reply
from okrflow.ops.startup import wait_for_database
from okrflow.settings import Settings
from okrflow.store.engine import DatabaseMissing, open_existing
from okrflow.store.schema import SchemaMissing, require_schema

logger = logging.getLogger(__name__)


class ExporterEndpoints:
    """What the exporter serves. A scrape renders the snapshot the last refresh took."""

    def __init__(self, collector: OkrCollector, refresh_seconds: float) -> None:
        self._collector = collector
        self._registry = process_registry("exporter")
        self._registry.register(collector)
        # Ready while the last successful refresh is this recent (a few refreshes missed).
        self._stale_after = max(3 * refresh_seconds, 10.0)

    def metrics(self) -> Reply:
        renderer = self._collector.renderer  # one consistent snapshot per scrape
        with self._collector.gate:
            chunks = [generate_latest(self._registry)]
            if renderer is not None:
                chunks += renderer.render_chunks()
        return Reply(200, chunks, CONTENT_TYPE_LATEST)

    def healthz(self) -> Reply:
        return json_reply(200, {"status": "ok"})

    def readyz(self) -> Reply:
        """Ready when a snapshot is served and the database matched it recently."""
        age = time.time() - self._collector.verified_at
        if self._collector.renderer is not None and age <= self._stale_after:
            return json_reply(200, {"status": "ready", "snapshot_age_seconds": round(age, 3)})
        problem = self._collector.last_error or "no snapshot taken yet"
        return json_reply(503, {"status": "not ready", "problems": {"database": problem}})


def run_exporter(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT. The first snapshot is taken before the port opens.

    The exporter only reads: it never creates or migrates the database, and waits (up to the
    start-up deadline) for one that is missing, unreachable or not yet migrated."""
    engine = wait_for_database(
        settings, open_existing, require_schema,
        wait_out={DatabaseMissing: ExitCode.DATABASE_UNREACHABLE,
                  SchemaMissing: ExitCode.SCHEMA_MISMATCH},
    )  # fmt: skip
    gate = ScrapeGate()
    reader = SnapshotReader(engine, gate.checkpoint)
    collector = OkrCollector(reader, gate, reader.forget, settings.exporter_forecasts)
    collector.refresh()
    collect_less_often()
    endpoints = ExporterEndpoints(collector, settings.exporter_refresh_seconds)
    server = OpsServer(
        settings.exporter_host, settings.exporter_port,
        {"/metrics": endpoints.metrics, "/healthz": endpoints.healthz,
         "/readyz": endpoints.readyz, **static_routes()},
        what="exporter's /metrics", setting="--port / OKRFLOW_EXPORTER_PORT",
        prefixes={"/": pages_for(collector, engine, settings)}, limits=ops_limits(settings),
    )  # fmt: skip
    server.start()
    logger.info("serving http://%s:%d/metrics", settings.exporter_host, server.port)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    refresh_forever(collector, settings.exporter_refresh_seconds, stop)
    server.stop()
    engine.dispose()
    return ExitCode.OK
