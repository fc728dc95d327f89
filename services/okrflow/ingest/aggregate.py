"""Pure per-batch steps between decoding and the database: replay filter, dedupe, totals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from okrflow.ingest.batch import Delivered


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


def totals_by_shop_type(events: Iterable[Delivered]) -> dict[tuple[str, str], TypeTotal]:
    """Events per (shop, type) with the latest event time: one row per key, so the upsert
    never touches a key twice in one statement."""
    totals: dict[tuple[str, str], TypeTotal] = {}
    for d in events:
        key = (d.event.shop, d.event.type)
        total = totals.get(key)
        if total is None:
            totals[key] = TypeTotal(1, d.event.time)
        else:
            total.events += 1
            if d.event.time > total.last_event_at:
                total.last_event_at = d.event.time
    return totals
