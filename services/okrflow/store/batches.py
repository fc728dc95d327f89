"""Applying one decoded batch in ONE transaction: counters, seen ids and applied offsets.

This is where exactly-once lives. Offsets recorded here are the truth for "already counted";
Kafka's committed offsets are only a hint for where to resume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import Connection, Engine, case, select

from okrflow.ingest.aggregate import (
    TypeTotal,
    first_occurrences,
    not_yet_applied,
    totals_by_shop_type,
)
from okrflow.ingest.batch import DecodedBatch, Delivered
from okrflow.ingest.series import SeriesDelta, SeriesKey, series_deltas
from okrflow.plans.matching import MatchIndex
from okrflow.store.counters import as_utc, write_series_deltas
from okrflow.store.dialect import insert_new_rows, upsert
from okrflow.store.plans import load_active_plans, plans_revision
from okrflow.store.tables import applied_offsets, seen_events, shop_event_totals

logger = logging.getLogger(__name__)


class PlanCache:
    """The worker's match index, reloaded inside a batch transaction whenever a plan changed
    (so `okrflow apply` reaches running workers with their next batch)."""

    def __init__(self) -> None:
        self.revision = -1
        self.index = MatchIndex([])

    def current(self, conn: Connection) -> MatchIndex:
        revision = plans_revision(conn)
        if revision != self.revision:
            self.index = MatchIndex(load_active_plans(conn))
            self.revision = revision
            logger.info(
                "plans at revision %d: %d key-result series", revision, self.index.target_count
            )
        return self.index


@dataclass(frozen=True)
class BatchResult:
    counted: int  # valid events counted for the first time
    duplicates: int  # valid events whose (shop, id) was already counted
    replayed: int  # messages at offsets an earlier transaction already applied
    unmatched: int = 0  # counted events that moved no key result


@dataclass(frozen=True)
class Precounted:
    """What a batch would add if none of its events had been seen: computed outside the
    transaction (overlapping the previous batch's database time), used when that holds."""

    revision: int
    unique: list[Delivered]
    totals: dict[tuple[str, str], TypeTotal]
    deltas: dict[SeriesKey, SeriesDelta]
    unmatched: int


def precount(batch: DecodedBatch, plans: PlanCache) -> Precounted:
    """Count a batch against the plans as last loaded. Pure CPU work, no database."""
    unique = first_occurrences(batch.events)
    deltas, unmatched = series_deltas((d.event for d in unique), plans.index)
    return Precounted(plans.revision, unique, totals_by_shop_type(unique), deltas, unmatched)


def apply_batch(
    engine: Engine, batch: DecodedBatch, now: datetime, plans: PlanCache,
    precounted: Precounted | None = None,
) -> BatchResult:  # fmt: skip
    """Count the batch's new events and record its offsets as applied, atomically.

    `precounted` is used when it still holds (no replayed offsets, no event id seen before,
    plans unchanged); otherwise the batch is counted again here, inside the transaction.
    Blocks on the database; raises SQLAlchemy errors when it is unreachable, in which case
    nothing was written and the caller must not commit the batch's Kafka offsets.
    """
    if not batch.next_offsets:
        return BatchResult(0, 0, 0)
    with engine.begin() as conn:
        query = select(applied_offsets.c.kafka_partition, applied_offsets.c.next_offset).where(
            applied_offsets.c.topic == batch.topic,
            applied_offsets.c.kafka_partition.in_(list(batch.next_offsets)),
        )
        if conn.dialect.name == "postgresql":
            # Row locks serialise two workers that both believe they own a partition (a
            # zombie after a rebalance): the second sees the first one's offsets and skips.
            query = query.with_for_update()
        rows = conn.execute(query).all()
        applied = {partition: offset for partition, offset in rows}
        fresh = not_yet_applied(batch.events, applied)
        replayed = len(batch) - len(fresh) - _fresh_rejected(batch, applied)
        if precounted is not None and len(fresh) == len(batch.events):
            unique = precounted.unique
        else:
            unique, precounted = first_occurrences(fresh), None
        new = _claim_event_ids(conn, unique, now) if unique else []
        index = plans.current(conn)
        if (
            precounted is not None
            and len(new) == len(unique)
            and precounted.revision == plans.revision
        ):
            totals, deltas, unmatched = precounted.totals, precounted.deltas, precounted.unmatched
        else:
            totals = totals_by_shop_type(new)
            deltas, unmatched = series_deltas((d.event for d in new), index)
        write_series_deltas(conn, deltas)
        if totals:
            stmt = upsert(conn, shop_event_totals)
            current = shop_event_totals.c
            stmt = stmt.on_conflict_do_update(
                index_elements=[current.shop, current.event_type],
                set_={
                    "events": current.events + stmt.excluded.events,
                    "last_event_at": case(
                        (
                            current.last_event_at.is_(None)
                            | (stmt.excluded.last_event_at > current.last_event_at),
                            stmt.excluded.last_event_at,
                        ),
                        else_=current.last_event_at,
                    ),
                },
            )
            conn.execute(
                stmt,
                [
                    {
                        "shop": shop,
                        "event_type": event_type,
                        "events": t.events,
                        "last_event_at": as_utc(t.last_event_at),
                    }
                    for (shop, event_type), t in sorted(totals.items())
                ],
            )
        offsets = {p: max(o, applied.get(p, 0)) for p, o in batch.next_offsets.items()}
        stmt = upsert(conn, applied_offsets)
        stmt = stmt.on_conflict_do_update(
            index_elements=[applied_offsets.c.topic, applied_offsets.c.kafka_partition],
            set_={"next_offset": stmt.excluded.next_offset},
        )
        conn.execute(
            stmt,
            [
                {"topic": batch.topic, "kafka_partition": p, "next_offset": o}
                for p, o in sorted(offsets.items())
            ],
        )
    return BatchResult(
        counted=len(new), duplicates=len(fresh) - len(new), replayed=replayed, unmatched=unmatched
    )


def _fresh_rejected(batch: DecodedBatch, applied: dict[int, int]) -> int:
    return sum(1 for r in batch.rejected if r.offset >= applied.get(r.partition, 0))


_CLAIM_PG = """
WITH input AS (
    SELECT e->>0 AS shop, e->>1 AS event_id, ord
    FROM json_array_elements(%(keys)s::json) WITH ORDINALITY AS t(e, ord)
), inserted AS (
    INSERT INTO seen_events (shop, event_id, seen_at)
    SELECT shop, event_id, %(seen_at)s FROM input
    ON CONFLICT DO NOTHING RETURNING shop, event_id
)
SELECT input.ord FROM input LEFT JOIN inserted USING (shop, event_id) WHERE inserted.shop IS NULL
"""


def _claim_event_ids(conn: Connection, events: list[Delivered], now: datetime) -> list[Delivered]:
    """Insert (shop, id) for each event (unique within `events`); return the events whose id
    was not there before.

    PostgreSQL returns only the positions of ids already seen (rare), not the thousands of new
    ones, and reads the keys from one JSON document encoded by msgspec.
    """
    seen_at = as_utc(now)
    if conn.dialect.name == "postgresql":
        keys = msgspec.json.encode([(d.event.shop, d.event.id) for d in events]).decode()
        seen = {
            int(ord_) - 1
            for (ord_,) in conn.exec_driver_sql(_CLAIM_PG, {"keys": keys, "seen_at": seen_at})
        }
        return [d for i, d in enumerate(events) if i not in seen] if seen else events
    rows = [{"shop": d.event.shop, "event_id": d.event.id, "seen_at": seen_at} for d in events]
    fresh = set(insert_new_rows(conn, seen_events, rows, ["shop", "event_id"]))
    return [d for d in events if (d.event.shop, d.event.id) in fresh]


def prune_seen_events(engine: Engine, now: datetime, window_seconds: float) -> int:
    """Forget event ids first seen before the dedupe window; returns how many."""
    with engine.begin() as conn:
        result = conn.execute(
            seen_events.delete().where(
                seen_events.c.seen_at < as_utc(now - timedelta(seconds=window_seconds))
            )
        )
    return int(result.rowcount or 0)
