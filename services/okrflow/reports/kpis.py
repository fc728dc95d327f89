"""A shop's KPIs from the database: over the window ending on a local day (`progress`, the
exporter), or on each of several days (`history`). The arithmetic is `domain.kpis`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection

from okrflow.domain.history import DayRow, SeriesRows
from okrflow.domain.kpis import KpiProgress, distinct_by_window, kpi_progress, window_of
from okrflow.domain.model import metric_parts
from okrflow.domain.plans import ActivePlan
from okrflow.domain.series import SeriesKey
from okrflow.jsontypes import JsonObject
from okrflow.reports.figures import KpiFigures
from okrflow.store.backfill_jobs import read_backfill_states
from okrflow.store.kpi_windows import read_kpi_days
from okrflow.store.kpis import read_distinct_counts, read_distinct_days
from okrflow.store.series_reads import read_series_rows


def _distinct_series(active: ActivePlan) -> list[SeriesKey]:
    return [
        (active.kpi_ids[kpi.key], part)
        for kpi in active.plan.kpis
        for part, metric in metric_parts(kpi.metric)
        if metric.aggregate == "count_distinct"
    ]


def _days_by_part(
    rows: Mapping[SeriesKey, SeriesRows], kpi_id: int, parts: Sequence[str]
) -> dict[str, Sequence[DayRow]]:
    return {part: rows[kpi_id, part].days for part in parts if (kpi_id, part) in rows}


def read_kpi_progress(
    conn: Connection, active: ActivePlan, today: date, with_backfill: bool = True
) -> list[KpiProgress]:
    """Every KPI of the plan over its window ending on local day `today`, in file order;
    with the backfill state of each (`with_backfill`, today's state: not for a past day)."""
    if not active.plan.kpis:
        return []
    kpis = read_kpis(conn, [active], [today], with_backfill=with_backfill)
    return list(kpis.get(active.plan.shop, ()))


def read_kpis(
    conn: Connection,
    plans: Sequence[ActivePlan],
    days: Sequence[date | None],
    checkpoint: Callable[[], None] = lambda: None,
    with_backfill: bool = True,
) -> dict[str, tuple[KpiProgress, ...]]:
    """shop -> its KPIs in file order, each over its window ending on the plan's local day
    in `days` (None: the plan has no KPIs), with the state of its backfill
    (`with_backfill`: today's state, not for a past day). The KPIs' day rows are read once
    for all shops, from the earliest day a window needs (`store.kpi_windows`)."""
    shops = [(a, today) for a, today in zip(plans, days, strict=True) if today is not None]
    if not shops:
        return {}
    since = min(window_of(today, kpi.window_days)[0] for a, today in shops for kpi in a.plan.kpis)
    rows = read_kpi_days(conn, since, checkpoint)
    ids = [i for a, _ in shops for i in a.kpi_ids.values()]
    backfill = read_backfill_states(conn, ids) if with_backfill else {}
    out: dict[str, tuple[KpiProgress, ...]] = {}
    for active, today in shops:
        checkpoint()
        plan, progress = active.plan, []
        for kpi in plan.kpis:
            kpi_id = active.kpi_ids[kpi.key]
            parts = metric_parts(kpi.metric)
            first, last = window_of(today, kpi.window_days)
            distinct_series = [(kpi_id, p) for p, m in parts if m.aggregate == "count_distinct"]
            distinct = {
                part: n
                for (_, part), n in read_distinct_counts(conn, distinct_series, first, last).items()
            }
            series_days = {p: rows[kpi_id, p] for p, _ in parts if (kpi_id, p) in rows}
            progress.append(kpi_progress(kpi, series_days, distinct, today, plan.timezone,
                                         backfill.get(kpi_id)))  # fmt: skip
        out[plan.shop] = tuple(progress)
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


@dataclass(frozen=True)
class KpiEntry:
    """A KPI in `progress`: its value over the window ending today, band and health, and the
    state of its backfill (None: none; "pending", "running": the value is partial; "done")."""

    key: str
    title: str
    window: str
    figures: KpiFigures
    band: str | None
    backfill: str | None

    @classmethod
    def of(cls, p: KpiProgress) -> KpiEntry:
        return cls(p.key, p.title, p.window, KpiFigures.of(p), p.band or None, p.backfill)

    def to_json(self) -> JsonObject:
        return {
            "key": self.key,
            "title": self.title,
            "window": self.window,
            **self.figures.to_json(),
            "band": self.band,
            "backfill": self.backfill,
        }
