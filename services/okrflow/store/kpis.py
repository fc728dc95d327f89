"""KPI distinct values per local day (`kpi_distinct_days`), SQL only: written with a batch's
counters, read as distinct counts over a rolling window (docs/design/history-and-backfill.md
4.2). A key result's count_distinct needs each value's first day only; a KPI's window rolls,
so it needs every day a value was seen."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Connection, distinct, func, select

from okrflow.domain.series import SeriesKey
from okrflow.store.dialect import upsert
from okrflow.store.tables import kpi_distinct_days

_ROWS_PER_STATEMENT = 5000


def write_kpi_distinct_days(conn: Connection, seen: Iterable[tuple[int, str, date, str]]) -> None:
    """Record (KPI id, part, local day, value), ignoring those already recorded. Call inside
    the batch transaction, with the batch's other counters."""
    rows = [
        {"key_result_id": kpi_id, "part": part, "day": day, "value": value}
        for kpi_id, part, day, value in sorted(set(seen))
    ]
    stmt = upsert(conn, kpi_distinct_days).on_conflict_do_nothing()
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        conn.execute(stmt, rows[start : start + _ROWS_PER_STATEMENT])


def read_distinct_counts(
    conn: Connection, series: Iterable[SeriesKey], first: date, last: date
) -> dict[SeriesKey, int]:
    """The number of distinct values of each series over local days [first, last]."""
    counts: dict[SeriesKey, int] = {}
    t = kpi_distinct_days
    for kpi_id, part in series:
        counts[kpi_id, part] = int(
            conn.execute(
                select(func.count(distinct(t.c.value))).where(
                    t.c.key_result_id == kpi_id, t.c.part == part, t.c.day.between(first, last)
                )
            ).scalar_one()
        )
    return counts


def read_distinct_days(
    conn: Connection, kpi_id: int, part: str, first: date, last: date
) -> list[tuple[date, str]]:
    """Every (local day, value) of a series over [first, last] (`okrflow history`)."""
    t = kpi_distinct_days
    return [
        (day, value)
        for day, value in conn.execute(
            select(t.c.day, t.c.value).where(
                t.c.key_result_id == kpi_id, t.c.part == part, t.c.day.between(first, last)
            )
        )
    ]


def prune_kpi_distinct_days(conn: Connection, before: date) -> int:
    """Forget the (day, value) rows of days before `before`; returns how many."""
    result = conn.execute(kpi_distinct_days.delete().where(kpi_distinct_days.c.day < before))
    return int(result.rowcount or 0)
