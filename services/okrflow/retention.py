"""How long the events topic keeps events: `retention.ms` of the topics okrflow creates.

History stays replayable only as far back as the events topic holds it, so okrflow creates
it with `OKRFLOW_EVENTS_RETENTION_DAYS` (default 400: a yearly objective and some margin).
An explicit `retention.ms` in `OKRFLOW_KAFKA_TOPIC_CONFIGS` wins. Pure (no Kafka client):
`okrflow validate` judges plans by it offline.
"""

from __future__ import annotations

from datetime import timedelta

from okrflow.settings import Settings

RETENTION_MS = "retention.ms"
DAY_MS = 24 * 3600 * 1000


def retention_ms(settings: Settings) -> str:
    """The events topic's `retention.ms` as Kafka takes it ("-1": unlimited)."""
    explicit = settings.kafka_topic_configs.get(RETENTION_MS)
    if explicit is not None:
        return explicit
    days = settings.events_retention_days
    return "-1" if days < 0 else str(days * DAY_MS)


def events_retention(settings: Settings) -> timedelta | None:
    """How far back the events topic reaches; None when unlimited. An explicit value Kafka
    would refuse (not an integer) is judged by `events_retention_days` instead."""
    try:
        ms = int(retention_ms(settings))
    except ValueError:
        days = settings.events_retention_days
        return None if days < 0 else timedelta(days=days)
    return None if ms < 0 else timedelta(milliseconds=ms)
