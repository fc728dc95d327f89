"""Pure per-batch steps between decoding and the database: replay filter, dedupe, totals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from okrflow.counting.decode import Delivered
from okrflow.events.types import BUILT_IN

# Events of a planned shop whose type is neither built in nor named in its plan are totalled
# under this one type: a producer cannot grow the totals (or the metrics) with made-up types.
OTHER_TYPE = "other"


def not_yet_applied(events: Iterable[Delivered], applied: Mapping[int, int]) -> list[Delivered]:
    """Events whose offset is at or past the partition's recorded next offset."""
    return [d for d in events if d.offset >= applied.get(d.partition, 0)]


def first_occurrences(events: Iterable[Delivered]) -> list[Delivered]:
    """Keep the first event of each (shop, id) in delivery order."""
    seen: set[tuple[str, str]] = set()
    kept: list[Delivered] = []
    for d in events:
        key = (d.event.shop, d.event.id)
        if key not in seen:
            seen.add(key)
            kept.append(d)
    return kept


@dataclass
class TypeTotal:
    events: int
    last_event_at: datetime


def totals_by_shop_type(
    events: Iterable[Delivered], planned_types: Mapping[str, set[str]]
) -> dict[tuple[str, str], TypeTotal]:
    """Events per (shop, type) with the latest event time: one row per key, so the upsert
    never touches a key twice in one statement. Only shops with a plan are totalled
    (`planned_types`: shop -> types its plan names); types neither built in nor named go
    under OTHER_TYPE."""
    # key -> [events, the latest time]. Aware datetimes of one offset share their tzinfo
    # (msgspec caches it), and those compare field by field, without converting to UTC.
    latest: dict[tuple[str, str], list[Any]] = {}
    built_in = BUILT_IN
    for d in events:
        event = d.event
        named = planned_types.get(event.shop)
        if named is None:
            continue
        event_type = event.type
        if event_type not in built_in and event_type not in named:
            event_type = OTHER_TYPE
        key = (event.shop, event_type)
        total = latest.get(key)
        if total is None:
            latest[key] = [1, event.time]
        else:
            total[0] += 1
            if event.time > total[1]:
                total[1] = event.time
    return {key: TypeTotal(n, at) for key, (n, at) in latest.items()}
