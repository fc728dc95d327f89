"""faust's consumer, feeding okrflow's topic to a `BatchStep` and positioning it from the
database: the thin glue between faust and okrflow's consumer core (okrflow.ingest.batch_step).

faust delivers every message on its own: `Consumer._drain_messages` awaits
`wait_first(callback(message), suspend_flow.wait())` per message, then the conductor, the
channel queue and the stream each touch it again (about 65 µs a message measured here).
okrflow applies events in batches anyway, so this consumer hands whole fetches of the events
topic to the batch step, which commits offsets itself after the database transaction. faust
still owns the group membership, rebalances, flow control and the worker's lifecycle;
messages of any other topic take faust's usual per-message path.

Rebalances are explicit: on revocation the app flushes the batch step (see
okrflow.ingest.app); on assignment, `seek_to_committed` (what faust calls to position the
consumer) seeks the events topic to the database's applied offsets, not Kafka's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiokafka
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP

from okrflow.ingest.errors import WorkerFatal


class FetchTunedConsumerThread(AIOKafkaConsumerThread):
    """faust's consumer thread, with the broker's fetch wait and minimum fetch size from
    okrflow's settings (`fetch_min_bytes`: see okrflow.settings).

    aiokafka keeps one fetch in flight per broker. faust asks the broker to hold a fetch up
    to 1.5 s when its partitions have no new data, and while it is held, partitions whose
    buffer ran dry cannot be fetched: with uneven partitions, consumption stalls that long
    again and again. Measured: the tail of a skewed backlog ran at under half speed.
    """

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        settings = self.app.okrflow_worker.settings  # type: ignore[attr-defined]
        for field in ("_fetch_max_wait_ms", "_fetch_min_bytes"):
            if not hasattr(consumer, field):  # aiokafka renamed its field
                raise RuntimeError(f"cannot set aiokafka's {field[1:]} on this version")
            setattr(consumer, field, getattr(settings, field[1:]))
        return consumer


class BatchConsumer(AIOKafkaConsumer):
    """See the module docstring. The worker's parts are `app.okrflow_worker`."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return FetchTunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # the Fetcher's background task
        worker = self.app.okrflow_worker  # type: ignore[attr-defined]
        step, topic = worker.step, worker.settings.events_topic
        callback: Callable[[Any], Awaitable[None]] = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                records, _ = await self._wait_next_records(max(0.01, step.wait_seconds(1.0)))
                # Records are never dropped, even while a rebalance stops the flow: the
                # fetch position has moved past them. What is held when partitions are
                # revoked is flushed then; a record fetched twice around a seek is one
                # offset, which the batch transaction applies once.
                if records and not self.should_stop:
                    for tp, batch in records.items():
                        if tp.topic == topic:
                            step.add(batch)
                        else:
                            for record in batch:
                                await callback(self._to_message(tp, record))
                if self.flow_active:
                    await step.poll()
                    await step.when_idle(worker.sink.maybe_freeze)  # every minute
            await step.flush()
        except WorkerFatal as exc:
            await worker.fail_after_writes(exc)
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                # Stopped (SIGTERM) while a rebalance is under way: faust's Fetcher would take
                # the cancellation for a rebalance restart and crash on its missing supervisor
                # (AttributeError, exit 1). Nothing is lost: the batch held is applied by
                # nobody yet, so the next owner of its partitions consumes it again.
                return
            raise
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Position every assigned partition; the events topic at the database's offsets."""
        positions = dict(await super().seek_to_committed())
        worker = self.app.okrflow_worker  # type: ignore[attr-defined]
        ours = sorted(tp for tp in self.assignment() if tp.topic == worker.settings.events_topic)
        if not ours:
            return positions
        starts = await self.earliest_offsets(*ours)
        ends = await self.highwaters(*ours)
        try:
            resume = await worker.resume_positions(
                {tp.partition: (starts[tp], ends[tp]) for tp in ours}
            )
        except WorkerFatal as exc:
            self.pause_partitions(ours)  # consume nothing from a wrong position
            worker.fail(exc)
            return positions
        for tp in ours:
            await self.seek(tp, resume[tp.partition])
            positions[tp] = resume[tp.partition]
        return positions

    async def commit_events_offsets(self, offsets: Mapping[int, int]) -> None:
        """Commit the events topic's next offsets (partitions still assigned)."""
        topic = self.app.okrflow_worker.settings.events_topic  # type: ignore[attr-defined]
        await self._commit({TP(topic, p): o for p, o in offsets.items()})

    def events_highwater(self, partition: int) -> int | None:
        topic = self.app.okrflow_worker.settings.events_topic  # type: ignore[attr-defined]
        try:
            return int(self.highwater(TP(topic, partition)))
        except (KeyError, AssertionError, TypeError):  # no metadata fetched yet
            return None


class BatchTransport(AIOKafkaTransport):
    Consumer = BatchConsumer
