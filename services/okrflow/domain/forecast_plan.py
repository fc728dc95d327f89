"""Forecasts for a whole plan, from what was counted (docs/formulas.md, "Forecast"). Pure.

Reads each key result's counted days from its `SeriesState` (`day_totals` for additive
metrics, `day_levels` for `latest`, `day_counts` for cadences) and combines key results
and child objectives into objective forecasts, children before their parents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from okrflow.domain.forecast import KeyResultForecast, NoForecast, Outcome, forecast_key_result
from okrflow.domain.forecast_cadence import forecast_cadence
from okrflow.domain.forecast_objective import (
    ObjectiveForecast,
    Part,
    key_result_part,
    maintained_part,
    objective_forecast,
)
from okrflow.domain.model import KeyResult, Objective, Period, Plan, SimpleMetric
from okrflow.domain.progress import (
    KeyResultMeasure,
    KeyResultState,
    ObjectiveMeasure,
    SeriesState,
)

ObjectiveOutcome = ObjectiveForecast | NoForecast
_NOTHING = SeriesState()


@dataclass(frozen=True)
class PlanForecast:
    """Every key result's forecast by (objective, key result), and every objective's."""

    key_results: Mapping[tuple[str, str], Outcome]
    objectives: Mapping[str, ObjectiveOutcome]


def key_result_outcome(
    kr: KeyResult, period: Period, tz: str, now: datetime, state: KeyResultState,
    measure: KeyResultMeasure,
) -> Outcome:  # fmt: skip
    """One key result's forecast at `now` from its counted state and its measure."""
    counted = state.get("value", _NOTHING)
    if kr.cadence is not None:
        return forecast_cadence(kr, period, tz, now, counted.day_counts)
    latest = isinstance(kr.metric, SimpleMetric) and kr.metric.aggregate == "latest"
    days = counted.day_levels if latest else counted.day_totals
    return forecast_key_result(kr, period, tz, now, measure.value, days)


def forecast_plan(
    plan: Plan, measures: Mapping[str, ObjectiveMeasure],
    states: Mapping[tuple[str, str], KeyResultState], now: datetime,
) -> PlanForecast:  # fmt: skip
    """Every key result's and objective's forecast at `now` (`measures`: `measure_plan`'s)."""
    key_results: dict[tuple[str, str], Outcome] = {}
    for objective in plan.objectives:
        for kr, m in zip(objective.key_results, measures[objective.key].key_results, strict=True):
            key_results[objective.key, kr.key] = key_result_outcome(
                kr, objective.period, plan.timezone, now, states.get((objective.key, kr.key), {}), m
            )
    children: dict[str, list[Objective]] = {}
    for o in plan.objectives:
        if o.parent is not None:
            children.setdefault(o.parent, []).append(o)
    objectives: dict[str, ObjectiveOutcome] = {}
    for o in plan.objectives:
        _objective(o, children, measures, key_results, objectives)
    return PlanForecast(key_results, {o.key: objectives[o.key] for o in plan.objectives})


def _objective(
    objective: Objective, children: Mapping[str, list[Objective]],
    measures: Mapping[str, ObjectiveMeasure], key_results: Mapping[tuple[str, str], Outcome],
    done: dict[str, ObjectiveOutcome],
) -> ObjectiveOutcome:  # fmt: skip
    if objective.key in done:
        return done[objective.key]
    parts: list[Part | NoForecast] = []
    for kr, m in zip(objective.key_results, measures[objective.key].key_results, strict=True):
        if m.waiting:  # left out of the roll-up, as in measure_objective
            continue
        outcome = key_results[objective.key, kr.key]
        if kr.maintain is not None:
            parts.append(maintained_part(kr.weight, m.progress))
        elif isinstance(outcome, KeyResultForecast):
            parts.append(key_result_part(kr.weight, m.baseline, m.target, outcome))
        else:
            parts.append(NoForecast(f"key result {kr.key}: {outcome.reason}"))
    for child in children.get(objective.key, ()):
        found = _objective(child, children, measures, key_results, done)
        if isinstance(found, ObjectiveForecast):
            parts.append(Part(child.weight, found.probability, found.p50_progress))
        elif found.reason.startswith("objective "):
            parts.append(found)  # already names the objective below
        else:
            parts.append(NoForecast(f"objective {child.key}: {found.reason}"))
    done[objective.key] = objective_forecast(parts)
    return done[objective.key]
