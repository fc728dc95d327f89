"""The day buckets the exporter's KPI windows need, SQL only: the days of every KPI in force
from one day on, in one statement.

`store.series_reads.read_series_rows` reads every day of every key result in force; called once
per shop it would read the whole table once per shop with KPIs at each refresh. KPIs never
look further back than their window (at most 366 days), so this reads their rows only, and
only from the earliest first day of any window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import Connection, bindparam, select

from okrflow.domain.history import DayRow
from okrflow.domain.series import SeriesKey
from okrflow.store.dialect import as_utc
from okrflow.store.plans import KPI
from okrflow.store.tables import key_results, kr_day_totals

_KPI_DAYS_SINCE = (
    select(kr_day_totals.c.key_result_id, kr_day_totals.c.part, kr_day_totals.c.day,
           kr_day_totals.c.events, kr_day_totals.c.total, kr_day_totals.c.level,
           kr_day_totals.c.level_at, kr_day_totals.c.last_event_at)
    .join(key_results, key_results.c.id == kr_day_totals.c.key_result_id)
    .where(key_results.c.kind == KPI, key_results.c.retired_at.is_(None),
           kr_day_totals.c.day >= bindparam("since"))
    .order_by(kr_day_totals.c.key_result_id, kr_day_totals.c.part, kr_day_totals.c.day)
)  # fmt: skip


def read_kpi_days(
    conn: Connection, since: date, checkpoint: Callable[[], None] = lambda: None
) -> dict[SeriesKey, list[DayRow]]:
    """Each KPI series in force: its stored days from local day `since` on, ascending.
    `checkpoint` is called every 250 rows (the exporter lets scrapes go first there)."""
    days: dict[SeriesKey, list[DayRow]] = {}
    rows = conn.execute(_KPI_DAYS_SINCE, {"since": since})
    for n, (kpi_id, part, day, events, total, level, level_at, last) in enumerate(rows):
        if n % 250 == 0:
            checkpoint()
        days.setdefault((kpi_id, part), []).append(DayRow(
            day, int(events), float(total), level, level_at and as_utc(level_at),
            last and as_utc(last),
        ))  # fmt: skip
    return days
