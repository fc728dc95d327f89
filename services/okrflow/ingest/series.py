"""Per-batch changes to key-result series, aggregated in memory before one write. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from okrflow.domain.periods import local_day
from okrflow.events import CloudEvent
from okrflow.plans.matching import MatchIndex, Target, is_number, path_value

SeriesKey = tuple[int, str]  # (key_result_id, part)


@dataclass
class SeriesDelta:
    """What one batch adds to one series."""

    aggregate: str
    events: int = 0
    days: dict[date, list[float]] = field(default_factory=dict)  # day -> [events, total]
    distinct: dict[str, date] = field(default_factory=dict)  # value -> first local day seen
    level: float | None = None
    level_at: datetime | None = None
    last_event_at: datetime | None = None

    def add(self, event: CloudEvent, day: date, value: Any) -> None:
        self.events += 1
        if self.last_event_at is None or event.time > self.last_event_at:
            self.last_event_at = event.time
        if self.aggregate in ("count", "sum"):
            bucket = self.days.setdefault(day, [0, 0.0])
            bucket[0] += 1
            bucket[1] += 1 if self.aggregate == "count" else value
        elif self.aggregate == "count_distinct":
            self.distinct.setdefault(value, day)
        else:
            self.level, self.level_at = merge_level(
                self.aggregate, self.level, self.level_at, value, event.time
            )


def merge_level(
    aggregate: str, level: float | None, level_at: datetime | None, value: float, at: datetime
) -> tuple[float, datetime]:
    """latest: the value with the newest event time (a tie keeps the later arrival);
    max / min: the extreme value (its time is when it was reached)."""
    if level is None or level_at is None:
        return value, at
    if aggregate == "latest":
        return (value, at) if at >= level_at else (level, level_at)
    if aggregate == "max":
        return (value, at) if value > level else (level, level_at)
    return (value, at) if value < level else (level, level_at)


def field_value(target: Target, event: CloudEvent) -> Any:
    """The value the target aggregates, or None when the event cannot count in it
    (field missing, or not a number where a number is needed)."""
    metric = target.metric
    if metric.aggregate == "count":
        return 1
    assert metric.field is not None
    value = path_value(event, metric.field)
    if metric.aggregate == "count_distinct":
        if (
            isinstance(value, dict | list)
            or value is None
            or not isinstance(value, str | int | float | bool)
        ):
            return None
        return json.dumps(value)[:255]
    return float(value) if is_number(value) else None


def series_deltas(
    events: Iterable[CloudEvent], index: MatchIndex
) -> tuple[dict[SeriesKey, SeriesDelta], int]:
    """Deltas per series for `events`; also how many events matched no series at all.

    Hot path: runs for every counted event, so the shop-local day is computed once per
    event (not per key result), the common `count` needs no field lookup, and each way of
    counting (`Target`) is aggregated once, then shared by every series that counts that way
    (the deltas are not modified afterwards).
    """
    by_target: dict[int, tuple[Target, SeriesDelta]] = {}
    unmatched = 0
    for event in events:
        targets = index.targets(event, event.time.timestamp())
        day: date | None = None
        day_tz = ""
        matched = False
        for target in targets:
            value = 1 if target.metric.aggregate == "count" else field_value(target, event)
            if value is None:
                continue
            if day is None or day_tz != target.timezone:
                day, day_tz = local_day(event.time, target.timezone), target.timezone
            entry = by_target.get(id(target))
            if entry is None:
                entry = by_target[id(target)] = (target, SeriesDelta(target.metric.aggregate))
            entry[1].add(event, day, value)
            matched = True
        if not matched:
            unmatched += 1
    deltas = {key: delta for target, delta in by_target.values() for key in target.series}
    return deltas, unmatched
