"""Writing key-result series deltas: one batch's days, levels and count_distinct values added
to the stored series, inside the batch transaction. Reading them back: `store.series_reads`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    bindparam,
    case,
    or_,
    select,
    tuple_,
    update,
)

from okrflow.domain.series import SeriesDelta, SeriesKey, merge_level
from okrflow.store.dialect import as_utc as as_utc  # re-exported: store/batches.py imports it here
from okrflow.store.dialect import recordset, upsert
from okrflow.store.distinct_values import claim_distinct_values
from okrflow.store.kpis import write_kpi_distinct_days
from okrflow.store.tables import kr_day_totals, kr_series

Arrival = Literal["later", "earlier"]


def write_series_deltas(
    conn: Connection, deltas: dict[SeriesKey, SeriesDelta], arrival: Arrival = "later"
) -> None:
    """Add one batch's deltas to the stored series. Call inside the batch transaction.

    `arrival`: "later" for the live worker (its events follow everything stored), "earlier"
    for a backfill (its events precede, in the log, everything the live worker stored after
    the cut): a `latest` tie on event time goes to the event later in the log either way."""
    if not deltas:
        return
    buckets: dict[tuple[int, str, date], _Bucket] = {}
    for (kr_id, part), delta in deltas.items():
        for day, (events, total) in delta.days.items():
            bucket = buckets.setdefault((kr_id, part, day), _Bucket(delta.aggregate))
            bucket.events, bucket.total = int(events), total
        for day, (level, level_at) in delta.day_levels.items():
            bucket = buckets.setdefault((kr_id, part, day), _Bucket(delta.aggregate))
            bucket.level, bucket.level_at = level, as_utc(level_at)
        for day, at in delta.day_last_event_at.items():
            buckets.setdefault((kr_id, part, day), _Bucket(delta.aggregate)).last_event_at = as_utc(
                at
            )
    _count_distinct_values(conn, deltas, buckets)
    write_kpi_distinct_days(conn, [
        (kr_id, part, day, value)
        for (kr_id, part), delta in deltas.items() if delta.value_days
        for day, value in delta.value_days
    ])  # fmt: skip
    _upsert_days(conn, buckets, arrival)
    _merge_series(conn, deltas, arrival)


class _Bucket:
    """What a batch adds to one day of one series."""

    __slots__ = ("aggregate", "events", "last_event_at", "level", "level_at", "total")

    def __init__(self, aggregate: str) -> None:
        self.aggregate = aggregate
        self.events, self.total = 0, 0.0
        self.level: float | None = None
        self.level_at: datetime | None = None
        self.last_event_at: datetime | None = None


def _count_distinct_values(
    conn: Connection, deltas: dict[SeriesKey, SeriesDelta],
    buckets: dict[tuple[int, str, date], _Bucket],
) -> None:  # fmt: skip
    """A value counts on the earliest local day of any event carrying it: a new value adds
    one to its day; a known value whose stored day is later moves there (one unit from the
    old day's bucket to the new one). Values stored without a day never move."""
    if not any(delta.distinct for delta in deltas.values()):
        return
    inserted, moved = claim_distinct_values(conn, deltas)
    for kr_id, part, value in inserted:
        delta = deltas[kr_id, part]
        _add_values(buckets, (kr_id, part, delta.distinct[value]), delta.aggregate, 1)
    for kr_id, part, _value, old_day, day in moved:
        aggregate = deltas[kr_id, part].aggregate
        _add_values(buckets, (kr_id, part, old_day), aggregate, -1)
        _add_values(buckets, (kr_id, part, day), aggregate, 1)


def _add_values(
    buckets: dict[tuple[int, str, date], _Bucket], key: tuple[int, str, date], aggregate: str,
    n: int,
) -> None:  # fmt: skip
    bucket = buckets.setdefault(key, _Bucket(aggregate))
    bucket.events += n
    bucket.total += n


def _upsert_days(
    conn: Connection, buckets: dict[tuple[int, str, date], _Bucket], arrival: Arrival
) -> None:
    """One upsert per kind of level merge: events and totals add up, the day's level merges
    as `merge_level` does (latest: the newest time, a tie to the later arrival; max / min:
    the extreme), the newest event time wins."""
    by_kind: dict[str, list[dict[str, object]]] = {}
    for (kr_id, part, day), b in sorted(buckets.items()):
        kind = b.aggregate if b.aggregate in _LEVEL_WINS else "additive"
        if kind == "latest" and arrival == "earlier":
            kind = "latest_earlier"
        by_kind.setdefault(kind, []).append({
            "key_result_id": kr_id, "part": part, "day": day, "events": b.events,
            "total": b.total, "level": b.level, "level_at": b.level_at,
            "last_event_at": b.last_event_at,
        })  # fmt: skip
    t = kr_day_totals
    for kind, rows in by_kind.items():
        stmt = upsert(conn, t)
        new = stmt.excluded
        later = or_(t.c.last_event_at.is_(None), new.last_event_at > t.c.last_event_at)
        set_: dict[str, object] = {
            "events": t.c.events + new.events,
            "total": t.c.total + new.total,
            "last_event_at": case((later, new.last_event_at), else_=t.c.last_event_at),
        }
        if kind != "additive":
            wins = or_(t.c.level.is_(None), t.c.level_at.is_(None), _LEVEL_WINS[kind](t, new))
            set_["level"] = case((wins, new.level), else_=t.c.level)
            set_["level_at"] = case((wins, new.level_at), else_=t.c.level_at)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.key_result_id, t.c.part, t.c.day], set_=set_
        )
        if conn.dialect.name == "postgresql":  # one JSON document, not ~10 parameters a row
            conn.execute(stmt.from_select(list(rows[0]), recordset(t, rows)))
        else:
            conn.execute(stmt, rows)


_LEVEL_WINS: dict[str, Callable[[Table, Any], ColumnElement[bool]]] = {
    "latest": lambda t, new: new.level_at >= t.c.level_at,  # a tie: the later arrival
    "latest_earlier": lambda t, new: new.level_at > t.c.level_at,  # a tie: the stored one
    "max": lambda t, new: new.level > t.c.level,
    "min": lambda t, new: new.level < t.c.level,
}


def _merge_series(conn: Connection, deltas: dict[SeriesKey, SeriesDelta], arrival: Arrival) -> None:
    keys = sorted(deltas)
    postgres = conn.dialect.name == "postgresql"
    new_series = [{"key_result_id": k, "part": p, "events": 0} for k, p in keys]
    if postgres:  # one statement over one JSON document, not one statement a row
        conn.execute(
            upsert(conn, kr_series)
            .from_select(list(new_series[0]), recordset(kr_series, new_series))
            .on_conflict_do_nothing()
        )
    else:
        conn.execute(upsert(conn, kr_series).on_conflict_do_nothing(), new_series)
    query = select(kr_series).where(tuple_(kr_series.c.key_result_id, kr_series.c.part).in_(keys))
    if postgres:
        # Two workers on different partitions may move the same key result: serialise them.
        query = query.with_for_update()
    rows = []
    for row in conn.execute(query):
        delta = deltas[row.key_result_id, row.part]
        level, level_at = row.level, as_utc(row.level_at) if row.level_at else None
        if delta.level is not None and delta.level_at is not None:
            level, level_at = merge_level(
                delta.aggregate, level, level_at, delta.level, delta.level_at,
                prefer_existing=arrival == "earlier",
            )  # fmt: skip
        last = row.last_event_at and as_utc(row.last_event_at)
        if delta.last_event_at is not None and (last is None or delta.last_event_at > last):
            last = delta.last_event_at
        rows.append({
            "b_id": row.key_result_id, "b_part": row.part, "events": row.events + delta.events,
            "level": level, "level_at": level_at and as_utc(level_at), "last_event_at": last and as_utc(last),
        })  # fmt: skip
    if postgres:
        conn.exec_driver_sql(_UPDATE_SERIES_PG, {"rows": msgspec.json.encode(rows).decode()})
        return
    conn.execute(
        update(kr_series)
        .where(kr_series.c.key_result_id == bindparam("b_id"), kr_series.c.part == bindparam("b_part"))
        .values(events=bindparam("events"), level=bindparam("level"), level_at=bindparam("level_at"),
                last_event_at=bindparam("last_event_at")),
        rows,
    )  # fmt: skip


# PostgreSQL: every series row of a batch updated from one JSON document (rows locked above).
_UPDATE_SERIES_PG = """
UPDATE kr_series AS t
SET events = r.events, level = r.level, level_at = r.level_at, last_event_at = r.last_event_at
FROM json_to_recordset(%(rows)s::json) AS r(
    b_id bigint, b_part text, events bigint, level double precision, level_at timestamptz,
    last_event_at timestamptz
)
WHERE t.key_result_id = r.b_id AND t.part = r.b_part
"""
