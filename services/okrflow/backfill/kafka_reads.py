"""What the backfill reads from Kafka without a consumer group: the events topic's
partitions, and the offsets the worker dead-lettered; and the one line when it cannot."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from okrflow.ingest.deadletters import (
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_TOPIC,
)  # fmt: skip
from okrflow.ingest.offsets import RESET_REASON
from okrflow.kafkaclient import client_kwargs, start_client
from okrflow.settings import Settings


def plain_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A consumer without a group or committed offsets (progress lives in the database). A
    position that retention deleted meanwhile resumes at the log's new start (aiokafka's
    default, "latest", would skip every message up to the cut)."""
    return AIOKafkaConsumer(
        **client_kwargs(settings), group_id=None, enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms, auto_offset_reset="earliest",
    )  # fmt: skip


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    await consumer._client.force_metadata_update()
    return sorted(consumer.partitions_for_topic(topic) or ())


async def dead_lettered_offsets(settings: Settings) -> dict[int, frozenset[int]]:
    """Source partition -> offsets of the events topic the worker dead-lettered (the DLQ's
    partition p mirrors the source's p; records before a `reset` marker name offsets of a log
    that is gone). Read whole on every run: it holds only refused messages."""
    consumer = plain_consumer(settings)
    found: dict[int, set[int]] = {}
    try:
        await start_client(consumer, settings)
        partitions = await topic_partitions(consumer, settings.dlq_topic)
        tps = [TopicPartition(settings.dlq_topic, p) for p in partitions]
        if not tps:
            return {}
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        source = settings.events_topic.encode()
        while remaining:
            for p in list(remaining):
                if await consumer.position(p) >= ends[p]:
                    remaining.discard(p)
            if not remaining:
                break
            fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=10_000)
            for tp, records in fetched.items():
                offsets = found.setdefault(tp.partition, set())
                for record in records:
                    headers = dict(record.headers or ())
                    if headers.get(HEADER_REASON) == RESET_REASON.encode():
                        offsets.clear()
                    elif headers.get(HEADER_TOPIC) == source and HEADER_OFFSET in headers:
                        partition = int(headers.get(HEADER_PARTITION, b"%d" % tp.partition))
                        found.setdefault(partition, set()).add(int(headers[HEADER_OFFSET]))
    finally:
        await consumer.stop()
    return {p: frozenset(o) for p, o in found.items()}
