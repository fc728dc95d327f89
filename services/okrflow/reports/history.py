"""The daily burn-up (`okrflow history`): every objective and key result of a shop as it
stood at the end of each local day, from the period's start to today (or its end).

Day D is exactly `okrflow progress --as-of D`: the same fold of the stored days
(`domain.history`), judged at the same instant (the local midnight after D), printed by the
same functions, with the forecast made then (from the events up to then: a backtest). The
days are folded in one pass per series, not once per day; each day's forecast stands on the
fold of its day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

from sqlalchemy import Connection

from okrflow.domain.forecast_plan import PlanForecast
from okrflow.domain.history import KeyResultStates, end_of_day, plan_states_by_day
from okrflow.domain.kpis import band_text
from okrflow.domain.model import Objective, Plan
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import ObjectiveProgress, judge_plan, measure_plan
from okrflow.jsontypes import JsonObject
from okrflow.reports.figures import KeyResultFigures, KpiFigures, ObjectiveFigures
from okrflow.reports.forecasts import (
    ForecastMemo,
    KeyResultOutlook,
    ObjectiveOutlook,
    fingerprint,
    forecast_instant,
    key_result_outlook,
    objective_outlook,
    outlook_json,
    plan_forecast,
    plan_tree,
)
from okrflow.reports.kpis import kpi_history
from okrflow.store.series_reads import read_series_rows


@dataclass(frozen=True)
class HistoryQuery:
    """Which part of a shop's plan, over which local days (both inclusive, None: unbounded)."""

    objective: str | None = None
    key_result: str | None = None
    first: date | None = None
    last: date | None = None


class NothingSelected(LookupError):
    """The plan has no such objective, or no such key result (in that objective)."""


@dataclass(frozen=True)
class KeyResultDay:
    """A key result at the end of a local day (the figures of `progress --as-of DAY`)."""

    day: date
    figures: KeyResultFigures
    forecast: KeyResultOutlook

    def to_json(self) -> JsonObject:
        return {"day": self.day.isoformat(), **self.figures.to_json(),
                **outlook_json(self.forecast)}  # fmt: skip


@dataclass(frozen=True)
class ObjectiveDay:
    day: date
    figures: ObjectiveFigures
    forecast: ObjectiveOutlook

    def to_json(self) -> JsonObject:
        return {"day": self.day.isoformat(), **self.figures.to_json(),
                **outlook_json(self.forecast)}  # fmt: skip


@dataclass(frozen=True)
class KpiDay:
    """A KPI over the window ending on `day`."""

    day: date
    figures: KpiFigures

    def to_json(self) -> JsonObject:
        return {"day": self.day.isoformat(), **self.figures.to_json()}


@dataclass(frozen=True)
class KeyResultHistory:
    key: str
    title: str
    days: tuple[KeyResultDay, ...]

    def to_json(self) -> JsonObject:
        return {"key": self.key, "title": self.title, "days": [d.to_json() for d in self.days]}


@dataclass(frozen=True)
class ObjectiveHistory:
    """An objective's days within its period and the query's, and its key results' days."""

    key: str
    title: str
    start: date
    end: date
    days: tuple[ObjectiveDay, ...]
    key_results: tuple[KeyResultHistory, ...]

    def to_json(self) -> JsonObject:
        return {
            "key": self.key, "title": self.title,
            "period": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "days": [d.to_json() for d in self.days],
            "key_results": [kr.to_json() for kr in self.key_results],
        }  # fmt: skip


@dataclass(frozen=True)
class KpiHistory:
    key: str
    title: str
    window: str
    band: str | None
    days: tuple[KpiDay, ...]

    def to_json(self) -> JsonObject:
        return {
            "key": self.key, "title": self.title, "window": self.window, "band": self.band,
            "days": [d.to_json() for d in self.days],
        }  # fmt: skip


@dataclass(frozen=True)
class HistoryReport:
    """A shop's burn-up; `to_json()` is what `okrflow history --format json` prints."""

    shop: str
    timezone: str
    today: date
    objectives: tuple[ObjectiveHistory, ...]
    kpis: tuple[KpiHistory, ...]

    def to_json(self) -> JsonObject:
        return {
            "shop": self.shop,
            "timezone": self.timezone,
            "today": self.today.isoformat(),
            "objectives": [o.to_json() for o in self.objectives],
            "kpis": [k.to_json() for k in self.kpis],
        }


def _selected(plan_objectives: tuple[Objective, ...], query: HistoryQuery) -> list[Objective]:
    chosen = [o for o in plan_objectives if query.objective in (None, o.key)]
    if query.objective is not None and not chosen:
        keys = ", ".join(o.key for o in plan_objectives)
        raise NothingSelected(f"no objective {query.objective!r} (objectives: {keys})")
    if query.key_result is not None:
        chosen = [o for o in chosen if any(kr.key == query.key_result for kr in o.key_results)]
        if not chosen:
            where = f" in objective {query.objective!r}" if query.objective else ""
            raise NothingSelected(f"no key result {query.key_result!r}{where}")
    return chosen


def _span(objective: Objective, query: HistoryQuery, today: date) -> tuple[date, date]:
    first = max(objective.period.start, query.first or objective.period.start)
    last = min(objective.period.end, today, query.last or objective.period.end)
    return first, last


def history_report(
    conn: Connection, active: ActivePlan, query: HistoryQuery, today: date,
    memo: ForecastMemo | None = None, now: datetime | None = None,
) -> HistoryReport:  # fmt: skip
    """The report `okrflow history` prints. `today` is the shop's local date now: no day
    after it is shown. `memo`: past days' forecasts kept between calls (the pages). `now`:
    a day not over yet is forecast then, not at its end (as `progress --as-of` does).
    Raises NothingSelected."""
    plan = active.plan
    chosen = _selected(plan.objectives, query)
    spans = {o.key: _span(o, query, today) for o in chosen}
    lo = min((a for a, b in spans.values() if a <= b), default=None)
    hi = max((b for a, b in spans.values() if a <= b), default=None)
    days = [] if lo is None or hi is None else _days(lo, hi)
    rows = read_series_rows(conn, active.key_result_ids.values()) if days else {}
    judged = _judged(active, plan_tree(plan, spans), days, plan_states_by_day(active, rows, days),
                     memo, now)  # fmt: skip
    objectives = []
    for o in chosen:
        first, last = spans[o.key]
        mine = [(d, r[o.key], f) for d, (r, f) in zip(days, judged, strict=True)
                if first <= d <= last]  # fmt: skip
        key_results = tuple(
            KeyResultHistory(kr.key, kr.title, tuple(
                KeyResultDay(d, KeyResultFigures.of(r.key_results[i]),
                             key_result_outlook(f.key_results[o.key, kr.key]))
                for d, r, f in mine
            ))
            for i, kr in enumerate(o.key_results)
            if query.key_result in (None, kr.key)
        )  # fmt: skip
        objectives.append(ObjectiveHistory(
            o.key, o.title, o.period.start, o.period.end,
            tuple(ObjectiveDay(d, ObjectiveFigures.of(r), objective_outlook(f.objectives[o.key]))
                  for d, r, f in mine),
            key_results,
        ))  # fmt: skip
    return HistoryReport(
        plan.shop, plan.timezone, today, tuple(objectives), _kpis(conn, active, query, today, lo)
    )


def _judged(
    active: ActivePlan, tree: Plan, days: Sequence[date], states_by_day: Sequence[KeyResultStates],
    memo: ForecastMemo | None, now: datetime | None,
) -> list[tuple[dict[str, ObjectiveProgress], PlanForecast]]:  # fmt: skip
    """Each day's objectives judged at its end, and the forecast then (`forecast_instant`)
    of `tree` (the objectives shown and those below them: the others' would be thrown
    away)."""
    plan = active.plan
    out = []
    for day, states in zip(days, states_by_day, strict=True):
        end = end_of_day(day, plan.timezone)
        measures = measure_plan(plan, states)
        instant = forecast_instant(end, now)
        forecast = partial(plan_forecast, tree, states, instant, measures)
        if memo is None or instant != end:  # a day not over: its forecast moves with now
            outlook = forecast()
        else:  # the plan by value: the pages cut a new one from the plan in force each time
            outlook = memo.get((tree, day, fingerprint(tree, states)), forecast)
        out.append((judge_plan(plan, measures, end), outlook))
    return out


def _kpis(
    conn: Connection, active: ActivePlan, query: HistoryQuery, today: date, lo: date | None
) -> tuple[KpiHistory, ...]:
    """Each KPI per day over the window ending that day: from `--from` (or the first day
    of the objectives shown, or today) to `--to` (or today). None when the query selects an
    objective or a key result."""
    if query.objective is not None or query.key_result is not None:
        return ()
    first = query.first or lo or today
    last = min(query.last or today, today)
    days = _days(first, last) if first <= last else []
    by_key = kpi_history(conn, active, days)
    return tuple(
        KpiHistory(
            kpi.key, kpi.title, f"{kpi.window_days}d", band_text(kpi.healthy) or None,
            tuple(KpiDay(p.last_day, KpiFigures.of(p)) for p in by_key.get(kpi.key, [])),
        )
        for kpi in active.plan.kpis
    )  # fmt: skip


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
