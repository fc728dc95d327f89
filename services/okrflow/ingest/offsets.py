"""`okrflow offsets show|reset`: the database's applied offsets against the topic's log.

The database's offsets are where workers resume (okrflow.ingest.resume). After the events
topic was deleted and created again, they can point past the new log's end, and workers stop
rather than guess; `reset` moves them to the log's start (count the topic as it is now: event
ids still in the dedupe window are not counted twice) or its end (count only what comes next).
Stop the workers first: a running worker would write its own offsets over the reset.

The dead-letter writer skips a dead letter whose source offset is at or below the last one in
its dead-letter partition (okrflow.ingest.deadletters). After a reset the source offsets start
again, so `reset` also writes a marker to each reset partition of the dead-letter topic: an
empty record with `okrflow.reason: reset` and `okrflow.offset: -1`. Readers of the dead-letter
topic skip records whose reason is `reset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Engine

from okrflow.ingest.deadletters import HEADER_OFFSET, HEADER_REASON, HEADER_TOPIC
from okrflow.kafkaclient import client_kwargs, start_client
from okrflow.settings import Settings
from okrflow.store.backfill import fail_unfinished_jobs
from okrflow.store.batches import read_applied_offsets, write_applied_offsets

RESET_REASON = "reset"


@dataclass(frozen=True)
class PartitionOffsets:
    partition: int
    applied: int | None  # the database's next offset (None: nothing applied yet)
    log_start: int
    log_end: int

    @property
    def ahead_of_log(self) -> bool:
        return self.applied is not None and self.applied > self.log_end


async def log_bounds(kafka: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """Partition -> (log start, log end) of `topic`; empty if the topic does not exist."""
    consumer = AIOKafkaConsumer(**client_kwargs(kafka), enable_auto_commit=False)
    try:
        await start_client(consumer, kafka)
        await consumer._client.force_metadata_update()
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return {}
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        return {tp.partition: (starts[tp], ends[tp]) for tp in tps}
    finally:
        await consumer.stop()


def compare(
    engine: Engine, topic: str, bounds: dict[int, tuple[int, int]]
) -> list[PartitionOffsets]:
    with engine.connect() as conn:
        applied = read_applied_offsets(conn, topic)
    partitions = sorted(set(bounds) | set(applied))
    return [PartitionOffsets(p, applied.get(p), *bounds.get(p, (0, 0))) for p in partitions]


def reset(
    engine: Engine, topic: str, offsets: list[PartitionOffsets],
    to: Literal["log-start", "log-end"], partitions: set[int] | None,
) -> list[tuple[PartitionOffsets, int]]:  # fmt: skip
    """Set the database's offsets of `partitions` (default: those past the log's end) to the
    log's start or end, in one transaction; returns (before, new offset) per change."""
    chosen = [
        o for o in offsets
        if (o.partition in partitions if partitions is not None else o.ahead_of_log)
    ]  # fmt: skip
    changes = [(o, o.log_start if to == "log-start" else o.log_end) for o in chosen]
    with engine.begin() as conn:
        write_applied_offsets(conn, topic, {o.partition: new for o, new in changes})
    if changes:  # backfill cuts are positions in the log as it was: they hold no longer
        with engine.begin() as conn:
            fail_unfinished_jobs(
                conn,
                f"`okrflow offsets reset --to {to}` moved the applied offsets of {topic} "
                "after this job's cut was recorded",
                datetime.now(UTC),
            )
    return changes


async def mark_dead_letters_reset(
    kafka: Settings, source_topic: str, dlq_topic: str, partitions: list[int]
) -> None:
    """Write the reset marker to each dead-letter partition (see the module docstring)."""
    producer = AIOKafkaProducer(**client_kwargs(kafka), acks="all", enable_idempotence=True)
    await start_client(producer, kafka)
    try:
        for partition in partitions:
            await producer.send_and_wait(
                dlq_topic, None, key=b"", partition=partition,
                headers=[(HEADER_REASON, RESET_REASON.encode()), (HEADER_OFFSET, b"-1"),
                         (HEADER_TOPIC, source_topic.encode())],
            )  # fmt: skip
    finally:
        await producer.stop()
