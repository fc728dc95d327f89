"""Reading key-result series back, SQL only: every stored day and each series' summary
(`read_series_rows`, for history and baselines), or only what "now" needs, as domain state
(`read_series_states`, for progress and the exporter). `store.counters` writes them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from sqlalchemy import Connection, select

from okrflow.domain.history import DayRow, SeriesRows, StoredSeries, current_state
from okrflow.domain.progress import SeriesState
from okrflow.domain.series import SeriesKey
from okrflow.store.dialect import as_utc
from okrflow.store.tables import key_results, kr_day_totals, kr_series

# Built once: building a statement per call leaves reference cycles for the collector.
_DAY_TOTALS_IN_FORCE = (
    select(kr_day_totals.c.key_result_id, kr_day_totals.c.part, kr_day_totals.c.day,
           kr_day_totals.c.events, kr_day_totals.c.total, kr_day_totals.c.level)
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
    days: dict[SeriesKey, list[tuple[date, int, float, float | None]]] = {}
    for n, (kr_id, part, day, events, total, level) in enumerate(
        conn.execute(_DAY_TOTALS_IN_FORCE)
    ):
        if n % 250 == 0:
            checkpoint()
        if kr_id in wanted:
            days.setdefault((kr_id, part), []).append(
                (day, int(events), float(total), None if level is None else float(level))
            )
    states: dict[int, dict[str, SeriesState]] = {}
    for (kr_id, part), stored in _read_summaries(conn, wanted, checkpoint).items():
        states.setdefault(kr_id, {})[part] = current_state(days.get((kr_id, part), ()), stored)
    return states
