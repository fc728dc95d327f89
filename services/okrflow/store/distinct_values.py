"""count_distinct values, SQL only: each value a key result's series counted is stored once
(`kr_distinct_values`) with the earliest local day of any event carrying it. A batch's values
are claimed here, new ones inserted and known ones moved to an earlier day; `store.counters`
turns what was claimed into the days' counts."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from sqlalchemy import Connection, select

from okrflow.domain.series import SeriesDelta, SeriesKey
from okrflow.store.dialect import driver_value, insert_new_rows
from okrflow.store.tables import kr_distinct_values

Inserted = list[tuple[int, str, str]]  # (id, part, value)
Moved = list[tuple[int, str, str, date, date]]  # (id, part, value, old day, new day)


def claim_distinct_values(
    conn: Connection, deltas: dict[SeriesKey, SeriesDelta]
) -> tuple[Inserted, Moved]:
    """The batch's values not stored yet (now inserted on their day), and the known ones whose
    stored day was later than the batch's (now moved to it)."""
    if conn.dialect.name == "postgresql":
        return _claim_values_pg(conn, deltas)
    return _claim_values_sqlite(conn, deltas)


def _claim_values_pg(
    conn: Connection, deltas: dict[SeriesKey, SeriesDelta]
) -> tuple[Inserted, Moved]:
    """PostgreSQL: insert the batch's values in one statement (those stored already are
    skipped), then move the known ones to earlier days in another."""
    rows: list[dict[str, int | str | date]] = [
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
    conn: Connection, known: list[dict[str, int | str | date]]
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
) -> tuple[Inserted, Moved]:
    """SQLite: the stored days of a series' values read with IN lists (not one query per
    value), the new values inserted through the driver's executemany (SQLAlchemy's
    INSERT ... RETURNING of thousands of rows cost ~10 µs a value in Python), the known
    ones whose stored day is later moved. The batch transaction holds SQLite's write lock
    already (its event ids are claimed first), so no other writer can store a value between
    the read and the insert; if one could, the plain INSERT would fail, not skip it."""
    inserted: Inserted = []
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
