"""`okrflow intake`: the HTTP intake on uvicorn, producing to the events topic."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette

from okrflow.access.tokens import TokenAuthenticator
from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.intake.app import IntakeParts, build_app
from okrflow.intake.credentials import WebhookSecrets
from okrflow.intake.metrics import IntakeMetrics, intake_registry
from okrflow.intake.openapi import openapi_document
from okrflow.intake.producer import EventProducer
from okrflow.intake.protocol import HttpLimits, guarded_protocol
from okrflow.intake.ratelimit import RateLimiter
from okrflow.jsontypes import JsonObject
from okrflow.ops.listen import listening_socket
from okrflow.ops.startup import wait_for_database, wait_for_kafka
from okrflow.reports.progress import progress_report
from okrflow.settings import Settings
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.topics import TopicLayoutError, ensure_topics

logger = logging.getLogger(__name__)


def intake_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(
        head_seconds=settings.intake_header_timeout_seconds,
        body_seconds=settings.intake_body_timeout_seconds,
        max_connections=settings.intake_max_connections,
        linger_seconds=settings.intake_linger_seconds,
        linger_bytes=settings.intake_linger_bytes,
    )


def uvicorn_config(app: Starlette, settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for the intake: h11 with okrflow's limits
    (okrflow.intake.protocol), okrflow's log handler, no access log, no lifespan."""
    return uvicorn.Config(
        app, host=settings.intake_host, port=settings.intake_port,
        http=guarded_protocol(intake_limits(settings)),
        log_level=settings.log_level.lower(), access_log=False, lifespan="off",
        log_config=None,  # uvicorn logs through okrflow's handler (okrflow.ops.logs)
        timeout_keep_alive=30, timeout_graceful_shutdown=30,
    )  # fmt: skip


def run_intake(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; requests in flight finish first.

    The port is bound first (a port in use fails at once), then the database and Kafka are
    waited for up to the start-up deadline (okrflow.ops.startup)."""
    sock = listening_socket(
        settings.intake_host, settings.intake_port,
        what="intake", setting="--port / OKRFLOW_INTAKE_PORT",
    )  # fmt: skip
    engine = wait_for_database(settings, make_engine, ensure_schema)
    engine.dispose()
    reader = make_engine(settings.database_url)

    def progress(shop: str) -> JsonObject:
        with reader.connect() as conn:
            return progress_report(conn, datetime.now(UTC), shop).to_json()

    async def connect() -> EventProducer:
        await ensure_topics(settings)  # with okrflow's partitions, not auto-created
        producer = EventProducer(settings)  # aiokafka binds to the running loop
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def serve() -> int:
        try:
            producer = await wait_for_kafka(settings, connect)
        except TopicLayoutError as exc:
            raise OperatorError(ExitCode.KAFKA_LAYOUT, str(exc)) from None
        registry = intake_registry()
        parts = IntakeParts(
            sink=producer,
            authenticate=TokenAuthenticator(
                reader, cache_seconds=settings.intake_credentials_cache_seconds
            ).authenticate,
            webhook_secret=WebhookSecrets(
                reader, cache_seconds=settings.intake_credentials_cache_seconds
            ).get,
            progress=progress,
            metrics=IntakeMetrics(registry),
            registry=registry,
            limiter=RateLimiter(settings.intake_rate_limit, settings.intake_rate_burst),
            openapi=openapi_document(settings),
            max_request_bytes=settings.intake_max_request_bytes,
            max_event_bytes=settings.max_event_bytes,
            max_batch_events=settings.intake_max_batch_events,
        )
        try:
            server = uvicorn.Server(uvicorn_config(build_app(parts), settings))
            await server.serve(sockets=[sock])
            return ExitCode.OK if server.started else ExitCode.FAILED
        finally:
            await producer.stop()

    return asyncio.run(serve())
