"""Creating okrflow's Kafka topics with the partition count the settings ask for."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from okrflow.settings import Settings


class TopicLayoutError(RuntimeError):
    """The existing topics cannot be used as they are."""


async def ensure_topics(settings: Settings) -> None:
    """Create the events and dead-letter topics if missing; existing topics are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=settings.events_partitions, replication_factor=1)
            for name in (settings.events_topic, settings.dlq_topic)
            if name not in existing
        ]
        if wanted:
            # Another process may create it between our list and create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        described = await admin.describe_topics([settings.events_topic, settings.dlq_topic])
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described}
    if partitions[settings.dlq_topic] < partitions[settings.events_topic]:
        raise TopicLayoutError(
            f"{settings.dlq_topic} has {partitions[settings.dlq_topic]} partitions, fewer than "
            f"{settings.events_topic} ({partitions[settings.events_topic]}): dead letters of "
            "partition p go to DLQ partition p, so give the DLQ at least as many partitions"
        )
