"""A shop's KPIs from the database: over the window ending on a local day (`progress`, the
exporter), or on each of several days (`history`). The arithmetic is `domain.kpis`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection

from okrflow.domain.history import DayRow
from okrflow.domain.kpis import KpiProgress, distinct_by_window, kpi_progress, window_of
from okrflow.domain.model import metric_parts
from okrflow.domain.plans import ActivePlan
from okrflow.domain.series import SeriesKey
from okrflow.store.backfill import read_backfill_states
from okrflow.store.counters import read_series_rows
from okrflow.store.kpis import read_distinct_counts, read_distinct_days


def _distinct_series(active: ActivePlan) -> list[SeriesKey]:
    return [
        (active.kpi_ids[kpi.key], part)
        for kpi in active.plan.kpis
        for part, metric in metric_parts(kpi.metric)
        if metric.aggregate == "count_distinct"
    ]


def _days_by_part(
    rows: dict[SeriesKey, Any], kpi_id: int, parts: Sequence[str]
) -> dict[str, Sequence[DayRow]]:
    return {part: rows[kpi_id, part].days for part in parts if (kpi_id, part) in rows}


def read_kpi_progress(
    conn: Connection, active: ActivePlan, today: date, with_backfill: bool = True
) -> list[KpiProgress]:
    """Every KPI of the plan over its window ending on local day `today`, in file order;
    with the backfill state of each (`with_backfill`, today's state: not for a past day)."""
    plan = active.plan
    if not plan.kpis:
        return []
    ids = list(active.kpi_ids.values())
    rows = read_series_rows(conn, ids)
    backfill = read_backfill_states(conn, ids) if with_backfill else {}
    out = []
    for kpi in plan.kpis:
        kpi_id = active.kpi_ids[kpi.key]
        parts = [part for part, _ in metric_parts(kpi.metric)]
        first, last = window_of(today, kpi.window_days)
        distinct_series = [s for s in _distinct_series(active) if s[0] == kpi_id]
        counts = read_distinct_counts(conn, distinct_series, first, last)
        distinct = {part: n for (_, part), n in counts.items()}
        days = _days_by_part(rows, kpi_id, parts)
        out.append(kpi_progress(kpi, days, distinct, today, plan.timezone, backfill.get(kpi_id)))
    return out


def kpi_history(
    conn: Connection, active: ActivePlan, days: Sequence[date]
) -> dict[str, list[KpiProgress]]:
    """Each KPI (by key) over the window ending on each of `days` (ascending local days)."""
    plan = active.plan
    if not plan.kpis or not days:
        return {}
    rows = read_series_rows(conn, active.kpi_ids.values())
    out: dict[str, list[KpiProgress]] = {}
    for kpi in plan.kpis:
        kpi_id = active.kpi_ids[kpi.key]
        parts = [part for part, _ in metric_parts(kpi.metric)]
        by_day: list[dict[str, int]] = [{} for _ in days]
        for part, metric in metric_parts(kpi.metric):
            if metric.aggregate != "count_distinct":
                continue
            first = window_of(days[0], kpi.window_days)[0]
            seen = read_distinct_days(conn, kpi_id, part, first, days[-1])
            for counts, n in zip(
                by_day, distinct_by_window(seen, days, kpi.window_days), strict=True
            ):
                counts[part] = n
        series_days = _days_by_part(rows, kpi_id, parts)
        out[kpi.key] = [
            kpi_progress(kpi, series_days, distinct, day, plan.timezone)
            for day, distinct in zip(days, by_day, strict=True)
        ]
    return out


def kpi_figures(p: KpiProgress) -> dict[str, Any]:
    """A KPI's numbers as JSON (`progress` and `history` print the same)."""
    from okrflow.reports.progress import _number  # progress imports this module

    return {
        "value": None if p.value is None else _number(p.value),
        "has_value": p.has_value,
        "healthy": p.healthy,
    }


def kpi_entry(p: KpiProgress) -> dict[str, Any]:
    """A KPI in `progress --format json`."""
    return {
        "key": p.key,
        "title": p.title,
        "window": p.window,
        **kpi_figures(p),
        "band": p.band or None,
        "backfill": p.backfill,
    }
