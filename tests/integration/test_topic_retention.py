"""The topics okrflow creates on a real broker keep `OKRFLOW_EVENTS_RETENTION_DAYS`;
existing topics are left as they are."""

from __future__ import annotations

import asyncio
import os

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from okrflow.kafkaclient import admin_client, start_client
from okrflow.settings import Settings
from okrflow.topics import ensure_topics

DAY_MS = 86_400_000


async def _retention_ms(settings: Settings, topic: str) -> str:
    admin = admin_client(settings)
    await start_client(admin, settings)
    try:
        response = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    entries = response[0].resources[0][4]
    return str({entry[0]: entry[1] for entry in entries}["retention.ms"])


def test_created_topics_keep_the_retention_and_existing_ones_are_not_altered(
    kafka_bootstrap: str,
) -> None:
    run = os.urandom(4).hex()
    names = {"events_topic": f"events-{run}", "dlq_topic": f"events-{run}.dlq"}
    default = Settings(kafka_bootstrap=kafka_bootstrap, events_partitions=1, **names)  # type: ignore[arg-type]
    asyncio.run(ensure_topics(default))
    assert asyncio.run(_retention_ms(default, names["events_topic"])) == str(400 * DAY_MS)
    assert asyncio.run(_retention_ms(default, names["dlq_topic"])) == str(400 * DAY_MS)

    shorter = default.model_copy(update={"events_retention_days": 30})
    asyncio.run(ensure_topics(shorter))
    assert asyncio.run(_retention_ms(shorter, names["events_topic"])) == str(400 * DAY_MS)
