"""The faust app: group membership and lifecycle from faust, batches to okrflow's core.

Offsets: Kafka offsets of a batch are committed only after its database transaction and its
dead letters (okrflow.ingest.batch_step has the order); the transaction records them as
applied, and every assignment resumes from there (okrflow.ingest.resume).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from signal import SIGTERM

import faust
from faust.types import TransportT
from mode.types.signals import BaseSignalT
from sqlalchemy import Engine

from okrflow.ingest.batch_step import BatchStep
from okrflow.ingest.batch_writer import DatabaseWriter
from okrflow.ingest.consumer import BatchConsumer, BatchTransport
from okrflow.ingest.deadletters import DeadLetterWriter
from okrflow.ingest.errors import WorkerFatal
from okrflow.ingest.health import Untyped
from okrflow.ingest.housekeeping import Housekeeping
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.ingest.prepared import PendingBatch, PreparedBatch
from okrflow.ingest.resume import resume_positions
from okrflow.ingest.sink import OkrflowSink
from okrflow.kafkaclient import faust_credentials
from okrflow.settings import Settings
from okrflow.store.batches import read_applied_offsets

logger = logging.getLogger(__name__)


class IngestWorker:
    """The parts of one worker that faust's consumer calls into."""

    def __init__(
        self, app: OkrflowApp, settings: Settings, sink: OkrflowSink, reader: Engine
    ) -> None:
        self.app = app
        self.reader = reader  # offset reads, off SQLite's write lock
        self.settings = settings
        self.sink = sink
        self.step: BatchStep[PreparedBatch, PendingBatch] = BatchStep(
            sink, self.commit, max_size=settings.batch_size, max_seconds=settings.batch_seconds
        )
        self.fatal: WorkerFatal | None = None

    async def commit(self, offsets: Mapping[int, int]) -> None:
        consumer = self.app.consumer
        assert isinstance(consumer, BatchConsumer)
        await consumer.commit_events_offsets(offsets)
        self.sink.observe_lag(consumer.events_highwater, offsets)

    async def resume_positions(self, bounds: Mapping[int, tuple[int, int]]) -> dict[int, int]:
        """Where to consume each assigned partition from (see okrflow.ingest.resume)."""
        self.sink.dead_letters.forget_watermarks()  # another worker may have written since

        def read() -> dict[int, int]:
            with self.reader.connect() as conn:
                return read_applied_offsets(conn, self.settings.events_topic, bounds)

        positions = resume_positions(
            self.settings.events_topic, await asyncio.to_thread(read), bounds
        )
        logger.info(
            "resuming %s from the database's offsets: %s", self.settings.events_topic,
            ", ".join(f"{p}@{o}" for p, o in sorted(positions.items())),
        )  # fmt: skip
        return positions

    async def on_revoked(
        self,
        sender: Untyped,
        /,
        *args: Untyped,
        signal: BaseSignalT[Untyped],
        **kwargs: Untyped,
    ) -> None:
        """Before partitions go: apply, dead-letter and commit to the database everything
        held, without waiting for Kafka's offset commit (it may wait for this very
        rebalance; the next owner resumes from the database's offsets). A batch that must
        stop the worker (found now, or by a batch still in flight) stops it with its own
        reason, as in the consumer loop, not as a crash of faust's rebalance."""
        if self.fatal is None:
            try:
                await self.step.flush(offsets=False)
            except WorkerFatal as exc:
                await self.fail_after_writes(exc)

    async def fail_after_writes(self, exc: WorkerFatal) -> None:
        """Finish the batches in flight (the open one is not applied), then `fail`."""
        await self.step.finish_writing()
        self.fail(exc)

    def fail(self, exc: WorkerFatal) -> None:
        """Stop the worker (gracefully, as on SIGTERM) and remember why."""
        if self.fatal is None:
            self.fatal = exc
            logger.error("stopping: %s", exc)
            os.kill(os.getpid(), SIGTERM)


class OkrflowApp(faust.App):
    """A faust app whose consumer hands okrflow's topic to `okrflow_worker` in batches."""

    okrflow_worker: IngestWorker

    def _new_transport(self) -> TransportT:
        return BatchTransport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        # A batch waiting for an unreachable database gives up instead of blocking shutdown.
        self.okrflow_worker.sink.stopping.set()
        await super().on_stop()
        await self.okrflow_worker.sink.dead_letters.close()
        if self.okrflow_worker.sink.helper is not None:
            self.okrflow_worker.sink.helper.close()


def build_app(
    settings: Settings, engine: Engine, metrics: PipelineMetrics, reader: Engine | None = None
) -> OkrflowApp:
    """The worker's faust app. `engine` writes batches; `reader` (default: `engine`) reads
    plans and offsets without taking SQLite's write lock."""
    app = OkrflowApp(
        settings.consumer_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        # TLS and SASL for every client faust makes: its consumer (okrflow's
        # FetchTunedConsumerThread builds on faust's), its producer, and topic creation.
        broker_credentials=faust_credentials(settings),
        datadir=str(settings.worker_data_dir),
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.events_partitions,
        # okrflow.topics creates the topics (with the settings' replication factor, which may
        # be -1, the broker's default: faust takes only >= 1) before the app starts. faust
        # creates none: okrflow has no tables, agents or timers, so no leader election either.
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=max(500, settings.batch_size),
        # Per partition and fetch: what the fetcher may buffer (6 partitions: up to 12 MiB).
        consumer_max_fetch_size=2 * 1024 * 1024,
        stream_wait_empty=False,
        broker_session_timeout=settings.kafka_session_timeout,
        broker_heartbeat_interval=settings.kafka_session_timeout / 4,
    )
    dead_letters = DeadLetterWriter(settings)
    writer = DatabaseWriter(engine, settings.events_topic, reader)
    housekeeping = Housekeeping(settings, engine)
    sink = OkrflowSink(settings, writer, metrics, dead_letters, housekeeping=housekeeping)
    app.okrflow_worker = IngestWorker(app, settings, sink, writer.reader)
    app.on_partitions_revoked.connect(app.okrflow_worker.on_revoked)
    topic = app.topic(
        settings.events_topic,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.events_partitions,
    )
    app.topics.add(topic)  # subscribe; no agent: the consumer hands batches to the sink
    return app
