"""What the pages show, from the exporter's served snapshot: the JSON twins.

A shop's progress is `reports.progress.shop_progress` (the shape of `okrflow progress --format
json` for one shop) over `domain.progress`: measured and forecast once per snapshot and shop
(the forecast at the snapshot's instant), judged at every request (pace and status move
with the clock). A key result's burn-up is
`reports.history.history_report` (the shape of `okrflow history --format json`), read once per
snapshot: the day rows are not in the snapshot; its past days' forecasts are kept between
snapshots while what they stand on is unchanged (`reports.forecasts.ForecastMemo`). A shop
page costs no SQL per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine

from okrflow.domain.forecast import NoForecast
from okrflow.domain.forecast_plan import PlanForecast, key_result_outcome
from okrflow.domain.model import Plan
from okrflow.domain.periods import local_day
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import KeyResultState, ObjectiveMeasure, judge_plan, measure_plan
from okrflow.exporter.snapshot import ProgressSnapshot, read_snapshot
from okrflow.reports.forecasts import (
    ForecastMemo,
    KeyResultOutlook,
    key_result_outlook,
    plan_forecast,
    plan_tree,
)
from okrflow.reports.history import HistoryQuery, HistoryReport, NothingSelected, history_report
from okrflow.reports.progress import ProgressReport, shop_progress
from okrflow.store.backfill_jobs import read_backfill_states

__all__ = ["NotFound", "PagesModel", "SnapshotView"]

T = TypeVar("T")


class NotFound(LookupError):
    """No such shop, objective or key result; the message names what exists."""


@dataclass(frozen=True)
class _Shop:
    active: ActivePlan
    states: Mapping[tuple[str, str], KeyResultState]
    measures: Mapping[str, ObjectiveMeasure]
    backfill: Mapping[str, Mapping[str, str]]  # objective -> key result -> state


def _objective_tree(active: ActivePlan, objective: str) -> ActivePlan:
    """The plan cut to `objective` and the objectives below it (its progress rolls them up):
    `history_report` judges every objective of the plan on every day, and a key result's
    history needs only these (1,000 objectives over a year: seconds, not milliseconds)."""
    plan = plan_tree(active.plan, [objective])
    keep = {o.key for o in plan.objectives}
    return ActivePlan(
        plan, {pair: i for pair, i in active.key_result_ids.items() if pair[0] in keep}
    )


class SnapshotView:
    """One snapshot as the pages read it; per-shop work is done once, on first use."""

    def __init__(
        self, snapshot: ProgressSnapshot, engine: Engine | None, memo: ForecastMemo | None = None
    ) -> None:
        self.snapshot = snapshot
        self._engine = engine
        self._memo = memo if memo is not None else ForecastMemo()
        self._plans = {active.plan.shop: active for active in snapshot.plans}
        self._shops: dict[str, _Shop] = {}
        self._forecasts: dict[str, PlanForecast] = {}
        self._histories: dict[tuple[str, str, str], HistoryReport] = {}
        self._backfill: Mapping[int, str] | None = None
        self._lock = threading.Lock()

    @property
    def shops(self) -> list[str]:
        return sorted(self._plans)

    def plan(self, shop: str) -> ActivePlan:
        active = self._plans.get(shop)
        if active is None:
            known = ", ".join(self.shops) or "none has a plan yet"
            raise NotFound(f"no shop {shop!r} has a plan (shops: {known})")
        return active

    def progress(self, shop: str, at: datetime, forecast: bool = True) -> ProgressReport:
        """`okrflow progress --shop SHOP` at `at` (in UTC), from this snapshot, with the
        forecasts at the snapshot's instant (`forecast=False`: not made, for a page that does
        not show them: `/`)."""
        view = self._shop(shop)
        plan = view.active.plan
        results = judge_plan(plan, view.measures, at)
        kpis = self.snapshot.kpis.get(shop, ())
        outlook = self._plan_forecast(view) if forecast else _unforecast(plan)
        entry = shop_progress(plan, results, outlook, view.backfill, kpis)
        return ProgressReport(at.astimezone(UTC), (entry,))

    def forecast(self, shop: str, objective: str, key_result: str) -> KeyResultOutlook:
        """A key result's forecast at the snapshot's instant (the burn-up's band): the
        shop's, when a page made it already, else this key result's alone."""
        view = self._shop(shop)
        with self._lock:
            made = self._forecasts.get(shop)
        if made is not None:
            return key_result_outlook(made.key_results[objective, key_result])
        o = next(o for o in view.active.plan.objectives if o.key == objective)
        i, kr = next((i, k) for i, k in enumerate(o.key_results) if k.key == key_result)
        measure = view.measures[objective].key_results[i]
        state = view.states.get((objective, key_result), {})
        tz = view.active.plan.timezone
        return key_result_outlook(
            key_result_outcome(kr, o.period, tz, self.taken_at, state, measure)
        )

    def _plan_forecast(self, view: _Shop) -> PlanForecast:
        """The shop's forecasts at the snapshot's instant, made once per snapshot."""
        shop = view.active.plan.shop
        with self._lock:
            made = self._forecasts.get(shop)
        if made is None:
            plan = view.active.plan
            made = plan_forecast(plan, view.states, self.taken_at, view.measures)
            with self._lock:
                self._forecasts[shop] = made
        return made

    @property
    def taken_at(self) -> datetime:
        return datetime.fromtimestamp(self.snapshot.taken_at, UTC)

    def history(self, shop: str, objective: str, key_result: str) -> HistoryReport:
        """`okrflow history SHOP --objective O --key-result K`, read once per
        snapshot (and per local day)."""
        active = _objective_tree(self.plan(shop), objective)
        query = HistoryQuery(objective, key_result)
        today = local_day(self.taken_at, active.plan.timezone)
        try:
            return self._cached_history((shop, objective, key_result), active, query, today)
        except NothingSelected as exc:
            raise NotFound(f"shop {shop!r}: {exc}") from None

    def _cached_history(
        self, key: tuple[str, str, str], active: ActivePlan, query: HistoryQuery, today: date
    ) -> HistoryReport:
        with self._lock:
            report = self._histories.get(key)
        if report is not None and report.today == today:
            return report
        fresh = self._read(
            lambda conn: history_report(conn, active, query, today, self._memo, self.taken_at)
        )
        with self._lock:
            self._histories[key] = fresh
        return fresh

    def _shop(self, shop: str) -> _Shop:
        with self._lock:
            cached = self._shops.get(shop)
        if cached is not None:
            return cached
        active = self.plan(shop)
        states = {
            pair: self.snapshot.states.get(kr_id, {})
            for pair, kr_id in active.key_result_ids.items()
        }
        by_id = self._backfill_states()
        backfill: dict[str, dict[str, str]] = {o.key: {} for o in active.plan.objectives}
        for (objective_key, kr_key), kr_id in active.key_result_ids.items():
            if kr_id in by_id:
                backfill[objective_key][kr_key] = by_id[kr_id]
        view = _Shop(active, states, measure_plan(active.plan, states), backfill)
        with self._lock:
            self._shops[shop] = view
        return view

    def _backfill_states(self) -> Mapping[int, str]:
        """The backfill state of every key result in force (`progress` shows it): one query
        per snapshot, on the first page that needs it."""
        if self._backfill is None:
            ids = [i for a in self.snapshot.plans for i in a.key_result_ids.values()]
            if self._engine is None:
                self._backfill = {}
            else:
                self._backfill = self._read(lambda conn: read_backfill_states(conn, ids))
        return self._backfill

    def _read(self, read: Callable[[Connection], T]) -> T:
        if self._engine is None:
            raise NotFound("no database to read the history from")
        with read_snapshot(self._engine) as conn:
            return read(conn)


def _unforecast(plan: Plan) -> PlanForecast:
    """No forecast for any key result or objective (a page that shows none)."""
    none = NoForecast("not made for this page")
    return PlanForecast(
        {(o.key, kr.key): none for o in plan.objectives for kr in o.key_results},
        {o.key: none for o in plan.objectives},
    )


class PagesModel:
    """The view of the snapshot the exporter serves now (a new view when it changes)."""

    def __init__(
        self, current: Callable[[], ProgressSnapshot | None], engine: Engine | None
    ) -> None:
        self._current = current
        self._engine = engine
        self._memo = ForecastMemo()  # past days' forecasts, across snapshots
        self._view: SnapshotView | None = None
        self._lock = threading.Lock()

    def view(self) -> SnapshotView | None:
        snapshot = self._current()
        if snapshot is None:
            return None
        with self._lock:
            if self._view is None or self._view.snapshot is not snapshot:
                self._view = SnapshotView(snapshot, self._engine, self._memo)
            return self._view
