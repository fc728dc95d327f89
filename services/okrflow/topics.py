"""Creating okrflow's Kafka topics with the partition count the settings ask for."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from okrflow.settings import Settings

# Dead letters are the events topic's messages plus a few headers: a message the events topic
# took (up to the broker's ~1 MiB default) must fit, so the DLQ takes up to this much.
DLQ_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class TopicLayoutError(RuntimeError):
    """The existing topics cannot be used as they are."""


async def ensure_topics(settings: Settings) -> None:
    """Create the events and dead-letter topics if missing; existing topics are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        configs = {
            settings.events_topic: {},
            settings.dlq_topic: {"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)},
        }
        wanted = [
            NewTopic(
                name, num_partitions=settings.events_partitions, replication_factor=1,
                topic_configs=config,
            )
            for name, config in configs.items()
            if name not in existing
        ]  # fmt: skip
        if wanted:
            # Another process may create it between our list and create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        # A topic just created may be described with no partitions until its metadata has
        # spread: ask again (bounded) rather than judge the layout on that.
        for _ in range(50):
            described = await admin.describe_topics([settings.events_topic, settings.dlq_topic])
            partitions = {t["topic"]: len(t["partitions"]) for t in described}
            if all(partitions.get(t, 0) > 0 for t in configs):
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    if partitions[settings.dlq_topic] < partitions[settings.events_topic]:
        raise TopicLayoutError(
            f"{settings.dlq_topic} has {partitions[settings.dlq_topic]} partitions, fewer than "
            f"{settings.events_topic} ({partitions[settings.events_topic]}): dead letters of "
            "partition p go to DLQ partition p, so give the DLQ at least as many partitions"
        )
