"""Counting a batch's events into key-result series deltas, in memory, before one write. Pure.

Per-message isolation lives here for values: an event whose value in an aggregated field is a
number okrflow cannot add exactly (beyond +/-2^53, where float64 stops holding integers; this
also keeps every sum finite) is rejected as `bad_number`, and counts nowhere. A value that is
missing or not a number is skipped by that key result only: the event is valid, and counts in
every other key result it matches (docs/events.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from okrflow.domain.series import SeriesDelta, SeriesKey
from okrflow.events import InvalidEvent
from okrflow.ingest.batch import Delivered
from okrflow.ingest.localdays import LocalDays
from okrflow.plans.matching import MatchIndex, Target, is_number, path_value

# The largest magnitude a value may have to be aggregated: integers up to 2^53 are exact in
# float64, and a sum of such values over any realistic number of events stays finite.
MAX_ABS_VALUE = 2.0**53


class ValueOutOfRange(ValueError):
    """An event's value that no key result can aggregate exactly (see MAX_ABS_VALUE)."""


@dataclass
class SeriesCount:
    """A batch counted against the plans: deltas per series, how many accepted events moved
    no series, and the events rejected for their values (to be dead-lettered)."""

    deltas: dict[SeriesKey, SeriesDelta] = field(default_factory=dict)
    accepted: list[Delivered] = field(default_factory=list)
    unmatched: int = 0
    rejected: list[tuple[Delivered, InvalidEvent]] = field(default_factory=list)


def distinct_text(value: str | int | float) -> str:
    """The text a count_distinct value is stored as: its JSON (`json.dumps`, so non-ASCII
    escaped), cut to 255 characters. Hot path: a printable ASCII string with no quote or
    backslash, or an int, is its JSON as is (json.dumps costs ~1 µs)."""
    if type(value) is str:
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'[:255]
    elif type(value) is int:
        return str(value)[:255]
    return json.dumps(value)[:255]


def field_value(target: Target, delivered: Delivered) -> float | str | None:
    """The value the target aggregates, or None when the event cannot count in it (field
    missing, or not a number where a number is needed). Raises ValueOutOfRange for a number
    beyond MAX_ABS_VALUE."""
    metric = target.metric
    if metric.aggregate == "count":
        return 1.0
    assert metric.field is not None
    value = path_value(delivered.event, metric.field)
    if metric.aggregate == "count_distinct":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return None
        return distinct_text(value)
    if not is_number(value):
        return None
    if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:  # also False for NaN
        path = ".".join(metric.field)
        shown = str(value) if len(str(value)) <= 40 else f"a {len(str(value))}-digit number"
        raise ValueOutOfRange(
            f"{shown} at `$.{path}` is beyond +/-2^53, the range okrflow aggregates exactly"
        )
    return float(value)


def series_deltas(events: Iterable[Delivered], index: MatchIndex) -> SeriesCount:
    """Deltas per series for `events` (already deduplicated), with the rejected events.

    Hot path: runs for every counted event, so the shop-local day is computed once per
    event (not per key result) and memoised by the hour (LocalDays), `count` and `sum` are
    added inline per day, and each way of counting (`Target`) is aggregated
    once, then shared by every series that counts that way (the deltas are not modified
    afterwards). An event's values are all read before any is added, so a rejected event
    leaves no trace in any series.
    """
    by_target: dict[int, tuple[Target, SeriesDelta]] = {}
    # Per `count` or `sum` target: local day -> [events, total, unix time of the newest
    # event, its time] (unix times compare faster than aware datetimes of other offsets).
    additive: dict[int, dict[date, list[Any]]] = {}
    count = SeriesCount()
    accept = count.accepted.append
    candidates_of = index.candidates
    local_days = LocalDays()
    unmatched = 0
    for delivered in events:
        event = delivered.event
        candidates = candidates_of(event.shop, event.type)
        if not candidates:
            unmatched += 1
            accept(delivered)
            continue
        at = event.time
        ts = at.timestamp()
        targets = [
            t for t in candidates
            if t.start <= ts < t.end and (t.accepts is None or t.accepts(event))
        ]  # fmt: skip
        if not targets:
            unmatched += 1
            accept(delivered)
            continue
        try:
            values = [
                1.0 if t.metric.aggregate == "count" else field_value(t, delivered) for t in targets
            ]
        except ValueOutOfRange as exc:
            count.rejected.append((delivered, InvalidEvent("bad_number", str(exc))))
            continue
        accept(delivered)
        day: date | None = None
        day_tz = ""
        matched = False
        for target, value in zip(targets, values, strict=True):
            if value is None:
                continue
            matched = True
            if day is None or day_tz != target.timezone:
                day, day_tz = local_days.day(target.timezone, ts, at), target.timezone
            key = id(target)
            if key not in by_target:
                delta = SeriesDelta(target.metric.aggregate)
                if target.rolling and target.metric.aggregate == "count_distinct":
                    delta.value_days = set()  # a KPI's windows need every day of a value
                by_target[key] = (target, delta)
                if delta.aggregate in ("count", "sum"):
                    additive[key] = {}
            days = additive.get(key)
            if days is None:
                by_target[key][1].add(at, day, value)
                continue
            bucket = days.get(day)
            if bucket is None:
                days[day] = [1, value, ts, at]
            else:
                bucket[0] += 1
                bucket[1] += value
                if ts > bucket[2]:
                    bucket[2], bucket[3] = ts, at
        if not matched:
            unmatched += 1
    for key, days in additive.items():
        _fold_additive(by_target[key][1], days)
    count.unmatched = unmatched
    count.deltas = {key: delta for target, delta in by_target.values() for key in target.series}
    return count


def _fold_additive(delta: SeriesDelta, days: dict[date, list[Any]]) -> None:
    """What SeriesDelta.add would have made of a `count` or `sum` target's events, per day."""
    for day, (events, total, _, newest) in days.items():
        delta.events += events
        delta.days[day] = [events, float(total)]
        delta.day_last_event_at[day] = newest
