"""The intake's producer on a real broker: every event on its key's partition, in order.

`EventProducer.send_all` works out each key's partition once per call (not once per event);
the partition must still be the one Kafka's default partitioner gives the key (murmur2, as
the Java client), which is what keeps one shop's events on one partition (docs/events.md).
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from aiokafka.partitioner import murmur2

from okrflow.intake.producer import EventProducer
from okrflow.settings import Settings
from okrflow.topics import ensure_topics
from tests.integration.streams import read_topic

PARTITIONS = 6


@pytest.mark.integration
def test_events_land_on_the_partition_of_their_key_in_order(kafka_bootstrap: str) -> None:
    run = os.urandom(4).hex()
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, events_topic=f"producer-{run}",
        dlq_topic=f"producer-{run}.dlq", events_partitions=PARTITIONS,
    )  # fmt: skip
    shops = [f"shop-{i}" for i in range(12)]
    calls = [
        [(shop.encode(), json.dumps({"shop": shop, "n": n}).encode()) for shop in shops]
        for n in range(3)
    ]  # three calls, each with every key

    async def produce() -> None:
        await ensure_topics(settings)
        producer = EventProducer(settings)
        await producer.start()
        try:
            for messages in calls:
                await producer.send_all(messages)
        finally:
            await producer.stop()

    asyncio.run(produce())
    records = read_topic(kafka_bootstrap, settings.events_topic)
    assert sorted((r.key, r.value) for r in records) == sorted(m for c in calls for m in c)
    for record in records:
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % PARTITIONS, record.key
    assert len({r.partition for r in records}) > 1
    for shop in shops:
        mine = sorted((r for r in records if r.key == shop.encode()), key=lambda r: r.offset)
        assert [json.loads(r.value)["n"] for r in mine] == [0, 1, 2]
