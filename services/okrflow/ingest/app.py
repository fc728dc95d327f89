"""The faust app: thin glue from the events topic to `apply_batch`.

Offsets: faust commits a batch's Kafka offsets only after the agent body has returned for
it, which is after `apply_batch` committed the database transaction (write, then commit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.streams import Stream
from faust.types import StreamT
from sqlalchemy import Engine

from okrflow.ingest.batch import DecodedBatch, decode_batch
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.settings import Settings
from okrflow.store.batches import BatchResult, PlanCache, apply_batch

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_app(
    settings: Settings, engine: Engine, metrics: PipelineMetrics, clock: Clock = utc_now
) -> faust.App:
    """A faust app with one agent that applies the events topic in batches."""
    app = faust.App(
        settings.consumer_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        datadir=str(settings.worker_data_dir),
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.events_partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
    )
    topic = app.topic(
        settings.events_topic,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.events_partitions,
    )

    plans = PlanCache()

    async def apply_events(stream: StreamT[Any]) -> None:
        assert isinstance(stream, Stream)  # take_events is not on the StreamT protocol
        async for events in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            batch = decode_batch(
                settings.events_topic,
                ((e.message.partition, e.message.offset, e.message.value) for e in events),
                settings.max_event_bytes,
            )
            # Shielded: a SIGTERM arriving mid-transaction lets the transaction finish.
            await asyncio.shield(asyncio.to_thread(_apply, engine, batch, plans, metrics, clock))

    app.agent(topic, name="okrflow.apply_events")(apply_events)
    return app


def _apply(
    engine: Engine, batch: DecodedBatch, plans: PlanCache, metrics: PipelineMetrics, clock: Clock
) -> BatchResult:
    with metrics.commit_seconds.time():
        result = apply_batch(engine, batch, clock(), plans)
    metrics.batch_size.observe(len(batch))
    metrics.last_commit.set_to_current_time()
    metrics.events.labels("counted").inc(result.counted - result.unmatched)
    metrics.events.labels("unmatched").inc(result.unmatched)
    metrics.events.labels("duplicate").inc(result.duplicates)
    metrics.events.labels("replayed").inc(result.replayed)
    metrics.events.labels("invalid").inc(len(batch.rejected))
    for rejected in batch.rejected:
        metrics.dead_letters.labels(rejected.invalid.reason).inc()
        logger.warning(
            "invalid event at %s[%d]@%d: %s: %s",
            batch.topic, rejected.partition, rejected.offset,
            rejected.invalid.reason, rejected.invalid.error,
        )  # fmt: skip
    logger.debug("applied batch of %d: %s", len(batch), result)
    return result
