"""The SQL of one batch transaction: applied offsets, seen event ids, shop event totals.

SQL only: what to write, and when, is decided by okrflow.ingest.transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import Connection, Engine, case, func, select
from sqlalchemy.exc import IntegrityError

from okrflow.store.counters import as_utc
from okrflow.store.dialect import driver_value, insert_new_rows, recordset, upsert
from okrflow.store.tables import applied_offsets, seen_events, shop_event_totals


def read_applied_offsets(
    conn: Connection, topic: str, partitions: Iterable[int] | None = None, *, lock: bool = False
) -> dict[int, int]:
    """Partition -> the next offset to apply, for the partitions that have one recorded.

    `lock` takes PostgreSQL row locks: two workers that both believe they own a partition
    (a zombie after a rebalance) are serialised, and the second sees the first's offsets.
    """
    query = select(applied_offsets.c.kafka_partition, applied_offsets.c.next_offset).where(
        applied_offsets.c.topic == topic
    )
    if partitions is not None:
        query = query.where(applied_offsets.c.kafka_partition.in_(list(partitions)))
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return {int(p): int(o) for p, o in conn.execute(query).all()}


def write_applied_offsets(conn: Connection, topic: str, offsets: Mapping[int, int]) -> None:
    """Record partition -> next offset (insert or overwrite)."""
    if not offsets:
        return
    stmt = upsert(conn, applied_offsets)
    stmt = stmt.on_conflict_do_update(
        index_elements=[applied_offsets.c.topic, applied_offsets.c.kafka_partition],
        set_={"next_offset": stmt.excluded.next_offset},
    )
    conn.execute(
        stmt,
        [
            {"topic": topic, "kafka_partition": p, "next_offset": o}
            for p, o in sorted(offsets.items())
        ],
    )


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


_INSERT_PG = """
INSERT INTO seen_events (shop, event_id, seen_at)
SELECT e->>0, e->>1, %(seen_at)s FROM json_array_elements(%(keys)s::json) AS t(e)
"""
_UNIQUE_VIOLATION = "23505"
_INSERT_SQLITE = "INSERT INTO seen_events (shop, event_id, seen_at) VALUES (?, ?, ?)"
_SQLITE_KEY_VIOLATIONS = ("SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE")


def claim_event_ids(
    conn: Connection, keys: Sequence[tuple[str, str]] | bytes, now: datetime
) -> set[int]:
    """Insert each (shop, event id) (unique within `keys`); return the positions of the keys
    that were already there. `keys` may come as a JSON array of [shop, id] pairs already
    (the counting helper's): PostgreSQL reads it as it is, SQLite decodes it.

    PostgreSQL reads the keys from one JSON document encoded by msgspec. Ids seen before are
    rare, so both databases first insert them all with a plain INSERT in a savepoint (measured: ~40%
    less server time than ON CONFLICT ... RETURNING); only when one was seen (a unique
    violation, which the server logs) does it insert again with ON CONFLICT and return the
    positions of the ids already seen, not the thousands of new ones.
    """
    if not keys or keys == b"[]":
        return set()
    seen_at = as_utc(now)
    if conn.dialect.name == "postgresql":
        document = (keys if isinstance(keys, bytes) else msgspec.json.encode(keys)).decode()
        try:
            with conn.begin_nested():  # a plain INSERT: no ON CONFLICT, no RETURNING
                conn.exec_driver_sql(_INSERT_PG, {"keys": document, "seen_at": seen_at})
            return set()
        except IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
        return {
            int(ord_) - 1
            for (ord_,) in conn.exec_driver_sql(_CLAIM_PG, {"keys": document, "seen_at": seen_at})
        }
    # SQLite: the same plain INSERT first, through the driver's executemany with the time
    # bound once (SQLAlchemy would convert it for every row), then the RETURNING path.
    if isinstance(keys, bytes):
        keys = msgspec.json.decode(keys, type=list[tuple[str, str]])
    stored_at = driver_value(conn, seen_events.c.seen_at)(seen_at)
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(
                _INSERT_SQLITE, [(shop, event_id, stored_at) for shop, event_id in keys]
            )
        return set()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlite_errorname", None) not in _SQLITE_KEY_VIOLATIONS:
            raise
    rows = [{"shop": shop, "event_id": event_id, "seen_at": seen_at} for shop, event_id in keys]
    fresh = set(insert_new_rows(conn, seen_events, rows, ["shop", "event_id"]))
    return {i for i, key in enumerate(keys) if key not in fresh}


def add_shop_event_totals(
    conn: Connection, totals: Iterable[tuple[str, str, int, datetime]]
) -> None:
    """Add (shop, type, events, latest event time) rows to the totals; one row per key."""
    rows = [
        {"shop": shop, "event_type": event_type, "events": n, "last_event_at": as_utc(at)}
        for shop, event_type, n, at in sorted(totals)
    ]
    if not rows:
        return
    stmt = upsert(conn, shop_event_totals)
    if conn.dialect.name == "postgresql":  # one JSON document, not one statement a row
        stmt = stmt.from_select(list(rows[0]), recordset(shop_event_totals, rows))
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
    if conn.dialect.name == "postgresql":
        conn.execute(stmt)
    else:
        conn.execute(stmt, rows)


def prune_seen_events(engine: Engine, now: datetime, window_seconds: float) -> int:
    """Forget event ids first seen before the dedupe window; returns how many."""
    with engine.begin() as conn:
        result = conn.execute(
            seen_events.delete().where(
                seen_events.c.seen_at < as_utc(now - timedelta(seconds=window_seconds))
            )
        )
    return int(result.rowcount or 0)


def count_shop_events(conn: Connection, shops: Iterable[str]) -> int:
    """Events counted so far for `shops` (all types)."""
    total = conn.execute(
        select(func.coalesce(func.sum(shop_event_totals.c.events), 0)).where(
            shop_event_totals.c.shop.in_(list(shops))
        )
    ).scalar_one()
    return int(total)
