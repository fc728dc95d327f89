"""Producing the intake's events to the events topic: acknowledged by every in-sync replica
(`acks=all`) by an idempotent producer, before the request is answered 202."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from okrflow.kafkaclient import client_kwargs
from okrflow.settings import Settings


class EventProducer:
    """One producer for the process; `send_all` resolves when the broker has every event."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.events_topic
        self._partitioner = DefaultPartitioner()
        self._producer = AIOKafkaProducer(
            **client_kwargs(settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            max_request_size=max(1024 * 1024, 2 * settings.max_event_bytes),
            partitioner=self._partitioner,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send_all(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Produce (key, value) pairs and wait for every acknowledgement. Raises aiokafka
        errors when the broker refuses or cannot be reached (some may have been written: a
        client's retry is absorbed by the worker's (shop, id) dedupe)."""
        # The partition of each key once per call, not once per event (the hash is pure
        # Python): the same partitioner, so the same partition as send() would choose.
        partitions = sorted(await self._producer.partitions_for(self.topic))
        partition_of: dict[bytes, int] = {}
        futures = []
        for key, value in messages:
            partition = partition_of.get(key)
            if partition is None:
                partition = partition_of[key] = self._partitioner(key, partitions, partitions)
            futures.append(
                await self._producer.send(self.topic, value, key=key, partition=partition)
            )
        await asyncio.gather(*futures)

    async def reachable(self, timeout: float) -> bool:
        """Whether the broker answers a metadata request within `timeout` seconds."""
        try:
            return bool(await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout))
        except (TimeoutError, OSError, KafkaError):
            return False
