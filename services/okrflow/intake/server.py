"""`okrflow intake`: the HTTP intake on uvicorn, producing to the events topic."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import uvicorn
from aiokafka.errors import KafkaError

from okrflow.intake.app import IntakeParts, build_app
from okrflow.intake.credentials import TokenAuthenticator, WebhookSecrets
from okrflow.intake.metrics import IntakeMetrics, intake_registry
from okrflow.intake.openapi import openapi_document
from okrflow.intake.producer import EventProducer
from okrflow.intake.ratelimit import RateLimiter
from okrflow.settings import Settings
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.topics import TopicLayoutError, ensure_topics

logger = logging.getLogger(__name__)


def run_intake(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; requests in flight finish first."""
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    reader = make_engine(settings.database_url)

    def progress(shop: str) -> dict[str, Any]:
        from okrflow.reports.progress import progress_report

        with reader.connect() as conn:
            return progress_report(conn, datetime.now(UTC), shop)

    async def serve() -> int:
        producer = EventProducer(settings)  # aiokafka binds to the running loop
        try:
            await ensure_topics(settings)  # with okrflow's partitions, not auto-created
            await producer.start()
        except KafkaError as exc:
            print(f"okrflow intake: cannot reach Kafka at {settings.kafka_bootstrap}: {exc}",
                  file=sys.stderr)  # fmt: skip
            await producer.stop()
            return 1
        except TopicLayoutError as exc:
            print(f"okrflow intake: {exc}", file=sys.stderr)
            await producer.stop()
            return 1
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
        config = uvicorn.Config(
            build_app(parts), host=settings.intake_host, port=settings.intake_port,
            log_level=settings.log_level.lower(), access_log=False, lifespan="off",
            timeout_keep_alive=30, timeout_graceful_shutdown=30,
        )  # fmt: skip
        try:
            server = uvicorn.Server(config)
            await server.serve()
            return 0 if server.started else 1
        finally:
            await producer.stop()

    return asyncio.run(serve())
