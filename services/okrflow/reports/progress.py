"""Progress of every objective and key result, from the database, judged at an instant,
with the forecast made then (`reports.forecasts`).

`progress_report` gives a `ProgressReport`; its `to_json()` is the document `okrflow progress
--format json` prints (shape in the README), the intake's `GET /v1/shops/{shop}/progress`
answers and the exporter's pages serve as their JSON twins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection

from okrflow.domain.forecast import Outcome
from okrflow.domain.forecast_plan import PlanForecast
from okrflow.domain.history import end_of_day, plan_states_as_of
from okrflow.domain.kpis import KpiProgress
from okrflow.domain.model import KeyResult, Objective, Plan
from okrflow.domain.periods import local_day
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import (
    KeyResultProgress,
    KeyResultState,
    ObjectiveMeasure,
    ObjectiveProgress,
    judge_plan,
    measure_plan,
)
from okrflow.jsontypes import JsonObject, JsonValue
from okrflow.plans.stored import load_active_plans
from okrflow.reports.figures import KeyResultFigures, ObjectiveFigures
from okrflow.reports.forecasts import (
    KeyResultOutlook,
    ObjectiveOutlook,
    counted_after,
    forecast_instant,
    key_result_outlook,
    objective_outlook,
    outlook_json,
    plan_forecast,
)
from okrflow.reports.kpis import KpiEntry, read_kpi_progress
from okrflow.store.backfill_jobs import read_backfill_states
from okrflow.store.series_reads import read_series_rows, read_series_states


@dataclass(frozen=True)
class KeyResultEntry:
    """A key result in `progress`. `backfill`: null (none), "pending", "running" (partial
    values) or "done"; shown only with today's values (`shows_backfill`), not a past day's."""

    key: str
    title: str
    figures: KeyResultFigures
    forecast: KeyResultOutlook
    backfill: str | None = None
    shows_backfill: bool = False

    def to_json(self) -> JsonObject:
        entry: JsonObject = {
            "key": self.key, "title": self.title, **self.figures.to_json(),
            **outlook_json(self.forecast),
        }  # fmt: skip
        if self.shows_backfill:
            entry["backfill"] = self.backfill
        return entry


@dataclass(frozen=True)
class ObjectiveEntry:
    """An objective in `progress`, with its key results in file order."""

    key: str
    title: str
    owner: str
    level: str
    parent: str | None
    start: date
    end: date
    figures: ObjectiveFigures
    forecast: ObjectiveOutlook
    key_results: tuple[KeyResultEntry, ...]

    def to_json(self) -> JsonObject:
        return {
            "key": self.key,
            "title": self.title,
            "owner": self.owner,
            "level": self.level,
            "parent": self.parent,
            "period": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            **self.figures.to_json(),
            **outlook_json(self.forecast),
            "key_results": [kr.to_json() for kr in self.key_results],
        }


@dataclass(frozen=True)
class AsOf:
    """The local day a report is of, and the instant it is judged at (the midnight after)."""

    day: date
    instant: datetime


@dataclass(frozen=True)
class ShopProgress:
    """One shop of `progress`: its objectives in file order and its KPIs."""

    shop: str
    timezone: str
    objectives: tuple[ObjectiveEntry, ...]
    kpis: tuple[KpiEntry, ...]
    as_of: AsOf | None = None

    def to_json(self) -> JsonObject:
        entry: JsonObject = {"shop": self.shop, "timezone": self.timezone}
        if self.as_of is not None:
            entry["as_of"] = {
                "date": self.as_of.day.isoformat(),
                "instant": self.as_of.instant.isoformat(),
            }
        entry["objectives"] = [o.to_json() for o in self.objectives]
        entry["kpis"] = [k.to_json() for k in self.kpis]
        return entry


@dataclass(frozen=True)
class ProgressReport:
    """Every shop's progress judged at `at`, or (`as_of`) at the end of a local day."""

    at: datetime | None
    shops: tuple[ShopProgress, ...]
    as_of: date | None = None

    def to_json(self) -> JsonObject:
        shops: list[JsonValue] = [s.to_json() for s in self.shops]
        if self.as_of is not None:
            return {"at": None, "as_of": self.as_of.isoformat(), "shops": shops}
        assert self.at is not None  # a report of now has its instant
        return {"at": self.at.isoformat(), "shops": shops}


def _key_result(
    kr: KeyResult, p: KeyResultProgress, outcome: Outcome, backfill: Mapping[str, str] | None
) -> KeyResultEntry:
    figures, forecast = KeyResultFigures.of(p), key_result_outlook(outcome)
    if backfill is None:
        return KeyResultEntry(p.key, kr.title, figures, forecast)
    return KeyResultEntry(p.key, kr.title, figures, forecast, backfill.get(p.key), True)


def _objective(
    objective: Objective, r: ObjectiveProgress, forecast: PlanForecast,
    backfill: Mapping[str, str] | None,
) -> ObjectiveEntry:  # fmt: skip
    return ObjectiveEntry(
        key=objective.key,
        title=objective.title,
        owner=objective.owner,
        level=objective.level,
        parent=objective.parent,
        start=objective.period.start,
        end=objective.period.end,
        figures=ObjectiveFigures.of(r),
        forecast=objective_outlook(forecast.objectives[objective.key]),
        key_results=tuple(
            _key_result(kr, p, forecast.key_results[objective.key, kr.key], backfill)
            for kr, p in zip(objective.key_results, r.key_results, strict=True)
        ),
    )


def _backfill(
    backfill: Mapping[str, Mapping[str, str]] | None, objective: str
) -> Mapping[str, str] | None:
    return None if backfill is None else backfill.get(objective, {})


def shop_progress(
    plan: Plan,
    results: Mapping[str, ObjectiveProgress],
    forecast: PlanForecast,
    backfill: Mapping[str, Mapping[str, str]] | None,
    kpis: Sequence[KpiProgress],
    as_of: AsOf | None = None,
) -> ShopProgress:
    """One shop of `progress` from its judged objectives, their forecasts, the backfill
    state of its key results (objective -> key result -> state; None: not shown) and its
    KPIs. The exporter's pages print the same from their snapshot."""
    return ShopProgress(
        shop=plan.shop,
        timezone=plan.timezone,
        objectives=tuple(
            _objective(o, results[o.key], forecast, _backfill(backfill, o.key))
            for o in plan.objectives
        ),
        kpis=tuple(KpiEntry.of(p) for p in kpis),
        as_of=as_of,
    )


def progress_report(
    conn: Connection, at: datetime, shop: str | None = None, as_of: date | None = None
) -> ProgressReport:
    """The report `okrflow progress` prints (its `to_json()`: `--format json`).

    With `as_of` (a local date), each shop's values are those counted from events up to the
    end of that day in the shop's time zone, judged and forecast at that instant (`at` is
    only the forecast's instant for a day not over yet), and the document carries
    `as_of`. Without it, the forecast at `at` stands on the local days up to `at`'s."""
    shops = []
    for active in load_active_plans(conn, shop):
        plan = active.plan
        if as_of is None:
            states_by_id = read_series_states(conn, active.key_result_ids.values())
            states: Mapping[tuple[str, str], KeyResultState] = {
                pair: states_by_id.get(kr_id, {}) for pair, kr_id in active.key_result_ids.items()
            }
            judged_at = at
        else:
            rows = read_series_rows(conn, active.key_result_ids.values())
            states = plan_states_as_of(active, rows, as_of)
            judged_at = end_of_day(as_of, plan.timezone)
        measures = measure_plan(plan, states)
        results = judge_plan(plan, measures, judged_at)
        # As of a day not over yet (today), the forecast is made now (`at`), not at its end.
        forecast = _forecast(conn, active, states, measures, forecast_instant(judged_at, at))
        day = None if as_of is None else AsOf(as_of, judged_at)
        # The backfill state is today's: shown with today's values, not with a past day's
        # (history shows none either).
        backfill: dict[str, dict[str, str]] | None = None
        if as_of is None:
            by_id = read_backfill_states(conn, active.key_result_ids.values())
            backfill = {o.key: {} for o in plan.objectives}
            for (objective_key, kr_key), kr_id in active.key_result_ids.items():
                if kr_id in by_id:
                    backfill[objective_key][kr_key] = by_id[kr_id]
        # KPIs over the window ending today (or on the as-of day), in the shop's time zone.
        today = as_of if as_of is not None else local_day(at, plan.timezone)
        kpis = read_kpi_progress(conn, active, today, as_of is None)
        shops.append(shop_progress(plan, results, forecast, backfill, kpis, day))
    if as_of is not None:
        return ProgressReport(None, tuple(shops), as_of)
    return ProgressReport(at, tuple(shops))


def _forecast(
    conn: Connection, active: ActivePlan, states: Mapping[tuple[str, str], KeyResultState],
    measures: Mapping[str, ObjectiveMeasure], at: datetime,
) -> PlanForecast:  # fmt: skip
    """The forecast at `at` from the events up to then: the states shown, unless they hold
    days after `at`'s local day (`--at` in the past), then the fold of the days up to it."""
    day = local_day(at, active.plan.timezone)
    if not counted_after(states, day):
        return plan_forecast(active.plan, states, at, measures)
    rows = read_series_rows(conn, active.key_result_ids.values())
    return plan_forecast(active.plan, plan_states_as_of(active, rows, day), at)
