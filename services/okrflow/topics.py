"""Creating okrflow's Kafka topics with the partitions, replication factor and topic configs
the settings ask for."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from okrflow.kafkaclient import admin_client, start_client
from okrflow.retention import RETENTION_MS, retention_ms
from okrflow.settings import Settings

# Dead letters are the events topic's messages plus a few headers: a message the events topic
# took (up to the broker's ~1 MiB default) must fit, so the DLQ takes up to this much.
DLQ_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class TopicLayoutError(RuntimeError):
    """The topics cannot be created, or the existing ones cannot be used as they are."""


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Topic name -> configs to create it with: the settings' `kafka_topic_configs` for both,
    `retention.ms` from `events_retention_days` unless those configs set it (explicit wins),
    and the DLQ's `max.message.bytes` (dead letters must fit, whatever the settings say).

    The DLQ keeps its dead letters as long as the events topic keeps the events: they are
    the part of the same history that could not be counted, to inspect and replay alike."""
    common = {RETENTION_MS: retention_ms(settings), **settings.kafka_topic_configs}
    return {
        settings.events_topic: common,
        settings.dlq_topic: {**common, "max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)},
    }


def new_topic(name: str, settings: Settings, configs: dict[str, str]) -> NewTopic:
    # aiokafka's NewTopic accepts a replication factor of -1 (the broker's
    # default.replication.factor) only together with a replica assignment, and an empty one
    # means "the broker assigns". Sent as CreateTopics v3 (aiokafka's newest), which Kafka 4's
    # KRaft controller takes with -1 (tests/integration/test_kafka_security.py checks it).
    return NewTopic(
        name, num_partitions=settings.events_partitions,
        replication_factor=settings.kafka_replication_factor,
        replica_assignments={} if settings.kafka_replication_factor == -1 else None,
        topic_configs=configs,
    )  # fmt: skip


def _raise_refusals(response: object) -> None:
    """CreateTopics answers per topic and aiokafka does not raise: an error other than
    'already exists' (another process won the race) is the operator's to fix."""
    problems = []
    for error in getattr(response, "topic_errors", ()):
        topic, code, message = error[0], error[1], error[2] if len(error) > 2 else None
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        name = for_code(code).__name__
        problems.append(f"{topic}: {name}" + (f": {message}" if message else ""))
    if problems:
        raise TopicLayoutError("Kafka refused to create " + "; ".join(problems))


async def ensure_topics(settings: Settings) -> None:
    """Create the events and dead-letter topics if missing; existing topics are left as they are."""
    admin = admin_client(settings)
    await start_client(admin, settings)
    try:
        existing = set(await admin.list_topics())
        configs = topic_configs(settings)
        wanted = [
            new_topic(name, settings, config)
            for name, config in configs.items()
            if name not in existing
        ]
        if wanted:
            # Another process may create it between our list and create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                _raise_refusals(await admin.create_topics(wanted))
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
