"""The events topic's retention: `retention.ms` of the topics okrflow creates, from
`OKRFLOW_EVENTS_RETENTION_DAYS`, an explicit `retention.ms` in the topic configs winning."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from okrflow.retention import events_retention
from okrflow.settings import Settings
from okrflow.topics import DLQ_MAX_MESSAGE_BYTES, topic_configs

DAY_MS = 86_400_000


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_both_topics_are_created_with_the_retention_in_days() -> None:
    s = settings(events_retention_days=30)
    configs = topic_configs(s)
    assert configs[s.events_topic] == {"retention.ms": str(30 * DAY_MS)}
    assert configs[s.dlq_topic] == {
        "retention.ms": str(30 * DAY_MS),
        "max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES),
    }
    assert events_retention(s) == timedelta(days=30)


def test_the_default_keeps_at_least_400_days() -> None:
    s = settings()
    retention_ms = int(topic_configs(s)[s.events_topic]["retention.ms"])
    assert retention_ms >= 400 * DAY_MS
    assert events_retention(s) == timedelta(milliseconds=retention_ms)


def test_minus_one_is_unlimited() -> None:
    s = settings(events_retention_days=-1)
    assert topic_configs(s)[s.events_topic]["retention.ms"] == "-1"
    assert events_retention(s) is None


def test_an_explicit_retention_ms_in_the_topic_configs_wins() -> None:
    s = settings(events_retention_days=30, kafka_topic_configs={"retention.ms": "7200000"})
    configs = topic_configs(s)
    assert configs[s.events_topic]["retention.ms"] == "7200000"
    assert configs[s.dlq_topic]["retention.ms"] == "7200000"
    assert events_retention(s) == timedelta(hours=2)
    unlimited = settings(kafka_topic_configs={"retention.ms": "-1"})
    assert events_retention(unlimited) is None


@pytest.mark.parametrize("days", [0, -2])
def test_zero_and_other_negative_days_are_refused(days: int) -> None:
    with pytest.raises(ValidationError, match="events_retention_days"):
        settings(events_retention_days=days)
