"""The forecasts as the reports print them (`progress`, `history`, the pages' twins), and
the plan's forecast at an instant from what was counted (docs/formulas.md, "Forecast").

A key result's entry carries `"forecast": {"probability", "p10", "p50", "p90",
"required_per_day", "basis_days", "method"}` (a cadence's also `"required_per_slot"`) and
`"forecast_reason": null`, or `"forecast": null` and the reason in words; an objective's
`"forecast": {"probability", "p50_progress"}` the same way. Numbers are rounded as printed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

from okrflow.domain.forecast import KeyResultForecast, NoForecast, Outcome
from okrflow.domain.forecast_objective import ObjectiveForecast
from okrflow.domain.forecast_plan import ObjectiveOutcome, PlanForecast, forecast_plan
from okrflow.domain.model import Plan
from okrflow.domain.progress import KeyResultState, ObjectiveMeasure, measure_plan
from okrflow.jsontypes import JsonObject
from okrflow.reports.figures import Number, number, ratio

__all__ = [
    "ForecastMemo",
    "KeyResultForecastFigures",
    "KeyResultOutlook",
    "ObjectiveForecastFigures",
    "ObjectiveOutlook",
    "counted_after",
    "fingerprint",
    "forecast_instant",
    "key_result_outlook",
    "objective_outlook",
    "outlook_json",
    "plan_forecast",
    "plan_tree",
]


def _figure(x: float) -> Number:
    """A projected value or pace: 6 decimals are more than any forecast means."""
    return number(round(x, 6))


@dataclass(frozen=True)
class KeyResultForecastFigures:
    """A key result's forecast as printed; `required_per_slot` only for a cadence."""

    probability: float | None
    p10: Number
    p50: Number
    p90: Number
    required_per_day: Number
    basis_days: int
    method: str
    required_per_slot: Number = None

    @classmethod
    def of(cls, f: KeyResultForecast) -> KeyResultForecastFigures:
        per_slot = None if f.required_per_slot is None else _figure(f.required_per_slot)
        return cls(
            ratio(f.probability), _figure(f.p10), _figure(f.p50), _figure(f.p90),
            _figure(f.required_per_day), f.basis_days, f.method, per_slot,
        )  # fmt: skip

    def to_json(self) -> JsonObject:
        out: JsonObject = {
            "probability": self.probability,
            "p10": self.p10,
            "p50": self.p50,
            "p90": self.p90,
            "required_per_day": self.required_per_day,
            "basis_days": self.basis_days,
            "method": self.method,
        }
        if self.required_per_slot is not None:
            out["required_per_slot"] = self.required_per_slot
        return out


@dataclass(frozen=True)
class ObjectiveForecastFigures:
    """An objective's forecast as printed: the chance its progress reaches 1, its median."""

    probability: float | None
    p50_progress: float | None

    @classmethod
    def of(cls, f: ObjectiveForecast) -> ObjectiveForecastFigures:
        return cls(ratio(f.probability), ratio(f.p50_progress))

    def to_json(self) -> JsonObject:
        return {"probability": self.probability, "p50_progress": self.p50_progress}


# What an entry carries: the forecast, or why there is none.
KeyResultOutlook = KeyResultForecastFigures | NoForecast
ObjectiveOutlook = ObjectiveForecastFigures | NoForecast


def key_result_outlook(outcome: Outcome) -> KeyResultOutlook:
    if isinstance(outcome, KeyResultForecast):
        return KeyResultForecastFigures.of(outcome)
    return outcome


def objective_outlook(outcome: ObjectiveOutcome) -> ObjectiveOutlook:
    if isinstance(outcome, ObjectiveForecast):
        return ObjectiveForecastFigures.of(outcome)
    return outcome


def outlook_json(outlook: KeyResultOutlook | ObjectiveOutlook) -> JsonObject:
    """`"forecast"` and `"forecast_reason"`, always both, in this order."""
    if isinstance(outlook, NoForecast):
        return {"forecast": None, "forecast_reason": outlook.reason}
    return {"forecast": outlook.to_json(), "forecast_reason": None}


def plan_forecast(
    plan: Plan, states: Mapping[tuple[str, str], KeyResultState], now: datetime,
    measures: Mapping[str, ObjectiveMeasure] | None = None,
) -> PlanForecast:  # fmt: skip
    """Every key result's and objective's forecast at `now` from the counted `states`
    (`measures`: `measure_plan(plan, states)` when the caller has it already)."""
    if measures is None:
        measures = measure_plan(plan, states)
    return forecast_plan(plan, measures, states, now)


def forecast_instant(end: datetime, now: datetime | None) -> datetime:
    """When a forecast "as of the end of a day" is made: at its end, or now while the day
    is not over (today): its end has not come, and today's events so far are not a whole
    day's (a cadence's slot of today would count as ended short)."""
    return end if now is None or now >= end else now


def counted_after(states: Mapping[tuple[str, str], KeyResultState], day: date) -> bool:
    """Whether any series has counted events on a local day after `day` (then a forecast
    at an instant of `day` must not stand on them)."""
    return any(
        any(d > day for d in state.day_counts)
        for parts in states.values()
        for state in parts.values()
    )


def plan_tree(plan: Plan, roots: Iterable[str]) -> Plan:
    """The plan cut to `roots` and the objectives below them (their forecasts need those),
    without KPIs."""
    keep = set(roots)
    grew = True
    while grew:  # bounded: each pass adds at least one objective, or stops
        below = {o.key for o in plan.objectives if o.parent in keep}
        grew = not below <= keep
        keep |= below
    return replace(plan, objectives=tuple(o for o in plan.objectives if o.key in keep), kpis=())


def fingerprint(plan: Plan, states: Mapping[tuple[str, str], KeyResultState]) -> Hashable:
    """What a plan's forecast at the end of a day stands on, as far as it can change: each
    series' events, total and level by then (a new event, late or not, moves its events)."""
    return tuple(
        (part, s.events, s.total, s.level)
        for o in plan.objectives
        for kr in o.key_results
        for part, s in sorted(states.get((o.key, kr.key), {}).items())
    )


class ForecastMemo:
    """Plan forecasts at the end of past days, kept for a caller that asks again (the pages,
    once a snapshot): a day's forecast is reused while nothing it stands on changed (its
    key includes the `fingerprint`). Bounded: the least recently used go first."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, PlanForecast] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], PlanForecast]) -> PlanForecast:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        fresh = compute()
        with self._lock:
            self._entries[key] = fresh
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return fresh
