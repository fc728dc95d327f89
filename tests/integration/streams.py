"""Reading what the pipeline wrote: applied offsets, totals, the dead-letter topic."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from okrflow.store.engine import make_engine


def db_scalar(database_url: str, sql: str, **params: Any) -> int:
    """One integer from the database; -1 while it is not readable (no schema yet)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar_one() or 0)
    except sa.exc.SQLAlchemyError:
        return -1
    finally:
        engine.dispose()


def applied_messages(database_url: str, topic: str) -> int:
    """Messages the database records as applied (the sum of next offsets over partitions)."""
    return db_scalar(
        database_url,
        "SELECT coalesce(sum(next_offset), 0) FROM applied_offsets WHERE topic = :t",
        t=topic,
    )


def totals(database_url: str) -> dict[tuple[str, str], int]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT shop, event_type, events FROM shop_event_totals")
            ).all()
    finally:
        engine.dispose()
    return {(shop, t): int(n) for shop, t, n in rows}


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: list[Any] = []
        for _ in range(1000):  # bounded: each round fetches up to a second's worth
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batches = await consumer.getmany(*tps, timeout_ms=1000)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic`, from the beginning to its current end."""
    return asyncio.run(_read_all(bootstrap, topic))


async def _produce(bootstrap: str, topic: str, values: list[bytes], key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def produce_raw(bootstrap: str, topic: str, values: list[bytes], key: bytes) -> None:
    """Send messages as they are (for payloads `okrflow emit` would refuse), one by one."""
    asyncio.run(_produce(bootstrap, topic, values, key))


Message = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]  # key, value, headers


async def _produce_many(
    bootstrap: str, topic: str, messages: list[Message]
) -> list[tuple[int, int]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
        max_request_size=4 * 1024 * 1024,
    )  # fmt: skip
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=headers or None)
            for key, value, headers in messages
        ]
        results = [await f for f in futures]
    finally:
        await producer.stop()
    return [(r.partition, r.offset) for r in results]


def produce_many(bootstrap: str, topic: str, messages: list[Message]) -> list[tuple[int, int]]:
    """Send (key, value, headers) messages as they are, in order; returns each one's
    (partition, offset)."""
    return asyncio.run(_produce_many(bootstrap, topic, messages))


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:  # no such group yet
        return -1
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


def committed_messages(bootstrap: str, group: str, topic: str) -> int:
    """The sum of the consumer group's committed offsets on `topic`: the worker commits them
    last, after the database and the dead letters (so everything before them is done)."""
    return asyncio.run(_committed(bootstrap, group, topic))
