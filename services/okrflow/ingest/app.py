"""The faust app: group membership and lifecycle from faust, batches to `OkrflowSink`.

Offsets: Kafka offsets of a batch are committed only after its database transaction
(write, then commit); the transaction itself records them as applied, which is what makes
redelivery after a crash or a rebalance harmless.
"""

from __future__ import annotations

import faust
from faust.types import TransportT
from sqlalchemy import Engine

from okrflow.ingest.consumer import BatchTransport
from okrflow.ingest.deadletters import DeadLetterWriter
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.ingest.sink import OkrflowSink
from okrflow.settings import Settings


class OkrflowApp(faust.App):
    """A faust app whose consumer hands okrflow's topic to `okrflow_sink` in batches."""

    okrflow_sink: OkrflowSink

    def _new_transport(self) -> TransportT:
        return BatchTransport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        # A batch waiting for an unreachable database gives up instead of blocking shutdown.
        self.okrflow_sink.stopping.set()
        await super().on_stop()
        await self.okrflow_sink.dead_letters.close()


def build_app(settings: Settings, engine: Engine, metrics: PipelineMetrics) -> OkrflowApp:
    app = OkrflowApp(
        settings.consumer_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        datadir=str(settings.worker_data_dir),
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.events_partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=max(500, settings.batch_size),
        consumer_max_fetch_size=8 * 1024 * 1024,
        stream_wait_empty=False,
        broker_session_timeout=settings.kafka_session_timeout,
        broker_heartbeat_interval=settings.kafka_session_timeout / 4,
    )
    dead_letters = DeadLetterWriter(
        settings.kafka_bootstrap, settings.events_topic, settings.dlq_topic
    )
    app.okrflow_sink = OkrflowSink(
        settings, engine, metrics, dead_letters, generation=lambda: int(app.consumer_generation_id)
    )
    topic = app.topic(
        settings.events_topic,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.events_partitions,
    )
    app.topics.add(topic)  # subscribe; no agent: the consumer hands batches to the sink

    return app
