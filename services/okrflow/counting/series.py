"""Counting a batch's events into key-result series deltas, in memory, before one write. Pure.

Per-message isolation for values: the decoder already refuses every event with a number beyond
+/-2^53 in its data (okrflow.events.numbers), so the same rule here is a backstop for an event
made without the decoder: one whose value in an aggregated field is a number okrflow cannot
add exactly is rejected as `bad_number`, and counts nowhere. A value that is
missing or not a number is skipped by that key result only: the event is valid, and counts in
every other key result it matches (docs/events.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from okrflow.counting.decode import Delivered
from okrflow.counting.localdays import LocalDays
from okrflow.counting.matching import MatchIndex, Target, is_number, path_value
from okrflow.domain.series import SeriesDelta, SeriesKey
from okrflow.events import CloudEvent, InvalidEvent
from okrflow.events.numbers import MAX_ABS_VALUE as EXACT_LIMIT

# The largest magnitude a value may have to be aggregated (the decoder's limit).
MAX_ABS_VALUE = float(EXACT_LIMIT)


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


Reader = Callable[[CloudEvent], float | str | None]


def value_reader(target: Target) -> Reader | None:
    """How `target` reads the value it aggregates from an event: None for `count`, where
    every matching event adds 1; else a reader giving the value, or None when the event
    cannot count in it (field missing, or not a number where a number is needed), and
    raising ValueOutOfRange for a number beyond MAX_ABS_VALUE. A `data.<key>` field is read
    with one dict lookup."""
    metric = target.metric
    if metric.aggregate == "count":
        return None
    path = metric.field
    assert path is not None
    if len(path) == 2 and path[0] == "data":
        key = path[1]

        def get(event: CloudEvent) -> Any:
            return event.data.get(key)  # missing or null: counted nowhere, like path_value's
    else:

        def get(event: CloudEvent) -> Any:
            return path_value(event, path)

    if metric.aggregate == "count_distinct":

        def distinct(event: CloudEvent) -> str | None:
            value = get(event)
            if type(value) is str or type(value) is int or type(value) is float:
                return distinct_text(value)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                return None
            return distinct_text(value)  # a subclass of str, int or float

        return distinct

    def number(event: CloudEvent) -> float | None:
        value = get(event)
        if not is_number(value):
            return None
        if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:  # also False for NaN
            shown = str(value) if len(str(value)) <= 40 else f"a {len(str(value))}-digit number"
            raise ValueOutOfRange(
                f"{shown} at `$.{'.'.join(path)}` is beyond +/-2^53, the range okrflow "
                "aggregates exactly"
            )
        return float(value)

    return number


class _Counting:
    """A target's state in one batch: its delta, its value reader, and for `count` and
    `sum` the per-day buckets added inline."""

    __slots__ = ("days", "delta", "read", "target", "timezone")

    def __init__(self, target: Target) -> None:
        self.target = target
        self.timezone = target.timezone
        self.read = value_reader(target)
        self.delta = SeriesDelta(target.metric.aggregate)
        if target.rolling and target.metric.aggregate == "count_distinct":
            self.delta.value_days = set()  # a KPI's windows need every day of a value
        # local day -> [events, total, unix time of the newest event, its time] (unix
        # times compare faster than aware datetimes of other offsets); None: delta.add.
        self.days: dict[date, list[Any]] | None = (
            {} if self.delta.aggregate in ("count", "sum") else None
        )


def series_deltas(events: Iterable[Delivered], index: MatchIndex) -> SeriesCount:
    """Deltas per series for `events` (already deduplicated), with the rejected events.

    Hot path: runs for every counted event, so each way of counting (`Target`) is aggregated
    once, then shared by every series that counts that way (the deltas are not modified
    afterwards); its value reader is made once a batch (value_reader); the shop-local day
    is computed once per event and zone, memoised by the hour (LocalDays); `count` and
    `sum` are added inline per day. An event's values are all read before any is added, so a
    rejected event leaves no trace in any series. tests/unit/counting/test_series_oracle.py
    holds this loop to a plain one.
    """
    counting: dict[int, _Counting] = {}  # id(target) -> its state in this batch
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
        matched: list[tuple[_Counting, float | str]] = []
        try:
            for target in candidates:
                if not (target.start <= ts < target.end):
                    continue
                if target.accepts is not None and not target.accepts(event):
                    continue
                state = counting.get(id(target))
                if state is None:
                    state = counting[id(target)] = _Counting(target)
                read = state.read
                if read is None:
                    matched.append((state, 1.0))
                else:
                    value = read(event)
                    if value is not None:
                        matched.append((state, value))
        except ValueOutOfRange as exc:
            count.rejected.append((delivered, InvalidEvent("bad_number", str(exc))))
            continue
        accept(delivered)
        if not matched:
            unmatched += 1
            continue
        day: date | None = None
        day_tz = ""
        for state, value in matched:
            if day is None or day_tz != state.timezone:
                day_tz = state.timezone
                day = local_days.day(day_tz, ts, at)
            days = state.days
            if days is None:
                state.delta.add(at, day, value)
                continue
            bucket = days.get(day)
            if bucket is None:
                days[day] = [1, value, ts, at]
            else:
                bucket[0] += 1
                bucket[1] += value
                if ts > bucket[2]:
                    bucket[2], bucket[3] = ts, at
    for state in counting.values():
        if state.days is not None:
            _fold_additive(state.delta, state.days)
    count.unmatched = unmatched
    # Targets whose events were all rejected or skipped move nothing.
    moved = [s for s in counting.values() if s.delta.events]
    count.deltas = {key: s.delta for s in moved for key in s.target.series}
    return count


def _fold_additive(delta: SeriesDelta, days: dict[date, list[Any]]) -> None:
    """What SeriesDelta.add would have made of a `count` or `sum` target's events, per day."""
    for day, (events, total, _, newest) in days.items():
        delta.events += events
        delta.days[day] = [events, float(total)]
        delta.day_last_event_at[day] = newest
