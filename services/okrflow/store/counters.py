"""Writing key-result series deltas, and reading them back as domain state."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
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

from okrflow.domain.history import DayRow, SeriesRows, StoredSeries, current_state
from okrflow.domain.progress import SeriesState
from okrflow.domain.series import SeriesDelta, SeriesKey, merge_level
from okrflow.store.dialect import driver_value, insert_new_rows, recordset, upsert
from okrflow.store.kpis import write_kpi_distinct_days
from okrflow.store.tables import key_results, kr_day_totals, kr_distinct_values, kr_series

Arrival = Literal["later", "earlier"]


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; SQLite hands back naive datetimes, which okrflow always writes as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
    if conn.dialect.name == "postgresql":
        inserted, moved = _claim_values_pg(conn, deltas)
    else:
        inserted, moved = _claim_values_sqlite(conn, deltas)
    for kr_id, part, value in inserted:
        delta = deltas[kr_id, part]
        _add_values(buckets, (kr_id, part, delta.distinct[value]), delta.aggregate, 1)
    for kr_id, part, _value, old_day, day in moved:
        aggregate = deltas[kr_id, part].aggregate
        _add_values(buckets, (kr_id, part, old_day), aggregate, -1)
        _add_values(buckets, (kr_id, part, day), aggregate, 1)


Moved = list[tuple[int, str, str, date, date]]  # (id, part, value, old day, new day)


def _claim_values_pg(
    conn: Connection, deltas: dict[SeriesKey, SeriesDelta]
) -> tuple[list[tuple[int, str, str]], Moved]:
    """PostgreSQL: insert the batch's values in one statement (those stored already are
    skipped), then move the known ones to earlier days in another."""
    rows = [
        {"key_result_id": kr_id, "part": part, "value": value, "first_day": day}
        for (kr_id, part), delta in deltas.items()
        for value, day in delta.distinct.items()
    ]
    inserted = insert_new_rows(conn, kr_distinct_values, rows, ["key_result_id", "part", "value"])
    new = set(inserted)
    known = [row for row in rows if (row["key_result_id"], row["part"], row["value"]) not in new]
    return inserted, move_to_earlier_days(conn, known) if known else []


_MOVE_PG = """
WITH input AS (
    SELECT key_result_id, part, value, first_day
    FROM json_populate_recordset(NULL::kr_distinct_values, %(rows)s)
), old AS (
    SELECT t.key_result_id, t.part, t.value, t.first_day AS old_day, input.first_day AS new_day
    FROM kr_distinct_values t JOIN input USING (key_result_id, part, value)
    WHERE t.first_day > input.first_day
    ORDER BY t.key_result_id, t.part, t.value
    FOR UPDATE OF t
), moved AS (
    UPDATE kr_distinct_values t SET first_day = old.new_day FROM old
    WHERE t.key_result_id = old.key_result_id AND t.part = old.part AND t.value = old.value
)
SELECT key_result_id, part, value, old_day, new_day FROM old
"""


def move_to_earlier_days(
    conn: Connection, known: list[dict[str, Any]]
) -> list[tuple[int, str, str, date, date]]:
    """PostgreSQL: in one statement over one JSON document, move every known value whose
    stored day is later than the batch's to the batch's day (rows locked); returns (id, part,
    value, old day, new day) of those moved."""
    encoded = msgspec.json.encode(known).decode()
    return [
        (int(kr_id), part, value, old_day, new_day)
        for kr_id, part, value, old_day, new_day in conn.exec_driver_sql(
            _MOVE_PG, {"rows": encoded}
        )
    ]


def _claim_values_sqlite(
    conn: Connection, deltas: dict[SeriesKey, SeriesDelta]
) -> tuple[list[tuple[int, str, str]], Moved]:
    """SQLite: the stored days of a series' values read with IN lists (not one query per
    value), the new values inserted through the driver's executemany (SQLAlchemy's
    INSERT ... RETURNING of thousands of rows cost ~10 µs a value in Python), the known
    ones whose stored day is later moved. The batch transaction holds SQLite's write lock
    already (its event ids are claimed first), so no other writer can store a value between
    the read and the insert; if one could, the plain INSERT would fail, not skip it."""
    inserted: list[tuple[int, str, str]] = []
    fresh: list[tuple[int, str, str, Any]] = []
    moved: Moved = []
    bind = driver_value(conn, kr_distinct_values.c.first_day)  # a date -> SQLite's text
    for (kr_id, part), delta in sorted(deltas.items()):
        if not delta.distinct:
            continue
        stored = _stored_days(conn, kr_id, part, sorted(delta.distinct))
        for value, day in delta.distinct.items():
            if value not in stored:
                inserted.append((kr_id, part, value))
                fresh.append((kr_id, part, value, bind(day)))
            elif (old_day := stored[value]) is not None and old_day > day:
                moved.append((kr_id, part, value, old_day, day))
    if fresh:
        conn.exec_driver_sql(_INSERT_VALUES_SQLITE, fresh)
    if moved:
        conn.exec_driver_sql(
            _MOVE_VALUES_SQLITE, [(bind(day), i, p, v) for i, p, v, _, day in moved]
        )
    return inserted, moved


_INSERT_VALUES_SQLITE = (
    "INSERT INTO kr_distinct_values (key_result_id, part, value, first_day) VALUES (?, ?, ?, ?)"
)
_MOVE_VALUES_SQLITE = (
    "UPDATE kr_distinct_values SET first_day = ? WHERE key_result_id = ? AND part = ? AND value = ?"
)


def _stored_days(
    conn: Connection, kr_id: int, part: str, values: list[str]
) -> dict[str, date | None]:
    """The stored first day (None: stored before days were kept) of each of `values` stored."""
    stored: dict[str, date | None] = {}
    for chunk in range(0, len(values), _IN_CHUNK):
        query = select(kr_distinct_values.c.value, kr_distinct_values.c.first_day).where(
            kr_distinct_values.c.key_result_id == kr_id,
            kr_distinct_values.c.part == part,
            kr_distinct_values.c.value.in_(values[chunk : chunk + _IN_CHUNK]),
        )
        stored.update((value, day) for value, day in conn.execute(query))
    return stored


_IN_CHUNK = 500  # values per IN list: far below SQLite's bound-parameter limit


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

# Built once: building a statement per call leaves reference cycles for the collector.
_DAY_TOTALS_IN_FORCE = (
    select(kr_day_totals.c.key_result_id, kr_day_totals.c.part, kr_day_totals.c.day,
           kr_day_totals.c.events, kr_day_totals.c.total)
    .join(key_results, key_results.c.id == kr_day_totals.c.key_result_id)
    .where(key_results.c.retired_at.is_(None))
)  # fmt: skip
_DAYS_IN_FORCE = (
    select(kr_day_totals.c.key_result_id, kr_day_totals.c.part, kr_day_totals.c.day,
           kr_day_totals.c.events, kr_day_totals.c.total, kr_day_totals.c.level,
           kr_day_totals.c.level_at, kr_day_totals.c.last_event_at)
    .join(key_results, key_results.c.id == kr_day_totals.c.key_result_id)
    .where(key_results.c.retired_at.is_(None))
    .order_by(kr_day_totals.c.key_result_id, kr_day_totals.c.part, kr_day_totals.c.day)
)  # fmt: skip
_SERIES_IN_FORCE = (
    select(kr_series.c.key_result_id, kr_series.c.part, kr_series.c.events, kr_series.c.level,
           kr_series.c.level_at, kr_series.c.last_event_at)
    .join(key_results, key_results.c.id == kr_series.c.key_result_id)
    .where(key_results.c.retired_at.is_(None))
)  # fmt: skip


def read_series_rows(
    conn: Connection, key_result_ids: Iterable[int], checkpoint: Callable[[], None] = lambda: None
) -> dict[SeriesKey, SeriesRows]:
    """Every stored day (ascending) and the summary of each series of the key results asked
    for. `checkpoint` is called every 250 rows (the exporter lets scrapes go first there).

    Reads the series of every key result in force (joined, not thousands of bound ids) and
    keeps the ones asked for; rows are read as plain tuples (the exporter reads them all at
    every refresh).
    """
    wanted = set(key_result_ids)
    if not wanted:
        return {}
    days: dict[SeriesKey, list[DayRow]] = {}
    for n, (kr_id, part, day, events, total, level, level_at, last) in enumerate(
        conn.execute(_DAYS_IN_FORCE)
    ):
        if n % 250 == 0:
            checkpoint()
        if kr_id in wanted:
            days.setdefault((kr_id, part), []).append(DayRow(
                day, int(events), float(total), level, level_at and as_utc(level_at),
                last and as_utc(last),
            ))  # fmt: skip
    stored = _read_summaries(conn, wanted, checkpoint)
    return {
        key: SeriesRows(days.get(key, ()), stored.get(key)) for key in days.keys() | stored.keys()
    }


def _read_summaries(
    conn: Connection, wanted: set[int], checkpoint: Callable[[], None]
) -> dict[SeriesKey, StoredSeries]:
    stored: dict[SeriesKey, StoredSeries] = {}
    for n, (kr_id, part, events, level, level_at, last) in enumerate(
        conn.execute(_SERIES_IN_FORCE)
    ):
        if n % 250 == 0:
            checkpoint()
        if kr_id in wanted:
            stored[kr_id, part] = StoredSeries(
                int(events), level, level_at and as_utc(level_at), last and as_utc(last)
            )
    return stored


def read_series_states(
    conn: Connection, key_result_ids: Iterable[int], checkpoint: Callable[[], None] = lambda: None
) -> dict[int, dict[str, SeriesState]]:
    """What has been counted for each key result, by series part
    (`domain.history.current_state`); series with no summary row yet are left out.
    `checkpoint` is called every 250 rows (the exporter lets scrapes go first there).

    Reads the series of every key result in force (joined, not thousands of bound ids) and
    keeps the ones asked for; rows are read as plain tuples, and only the columns "now"
    needs (the exporter reads them all at every refresh).
    """
    wanted = set(key_result_ids)
    if not wanted:
        return {}
    days: dict[SeriesKey, list[tuple[date, int, float]]] = {}
    for n, (kr_id, part, day, events, total) in enumerate(conn.execute(_DAY_TOTALS_IN_FORCE)):
        if n % 250 == 0:
            checkpoint()
        if kr_id in wanted:
            days.setdefault((kr_id, part), []).append((day, int(events), float(total)))
    states: dict[int, dict[str, SeriesState]] = {}
    for (kr_id, part), stored in _read_summaries(conn, wanted, checkpoint).items():
        states.setdefault(kr_id, {})[part] = current_state(days.get((kr_id, part), ()), stored)
    return states
