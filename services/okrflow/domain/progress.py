"""Key-result and objective values and progress from what was counted, and the same judged
at an instant with `domain.pace` (docs/formulas.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime

from okrflow.domain.model import (
    KeyResult,
    Objective,
    Period,
    Plan,
    RatioMetric,
    SimpleMetric,
    Status,
    Thresholds,
)
from okrflow.domain.pace import DEFAULT_THRESHOLDS, clamp01, judge_key_result, judge_objective
from okrflow.domain.periods import cadence_slots, slot_of_day


@dataclass(frozen=True)
class SeriesState:
    """What has been counted for one series of a key result (see `metric_parts`)."""

    events: int = 0
    total: float = 0.0  # count, sum, or distinct values: the additive aggregate
    level: float | None = None  # latest, max or min
    day_counts: Mapping[date, int] = field(default_factory=dict)  # events per local day
    # The additive aggregate's increment per local day (count, sum, new distinct values), and
    # a level aggregate's level at the end of each day that had one: what a forecast reads.
    day_totals: Mapping[date, float] = field(default_factory=dict)
    day_levels: Mapping[date, float] = field(default_factory=dict)
    last_event_at: datetime | None = None


KeyResultState = Mapping[str, SeriesState]


@dataclass(frozen=True)
class KeyResultMeasure:
    """What a key result's counted events amount to: independent of the clock."""

    key: str
    value: float
    baseline: float
    target: float
    progress: float
    has_value: bool  # False while a level or ratio metric has seen no (usable) event
    last_event_at: datetime | None
    # A baseline from data not measured yet: baseline, target and progress are NaN, and the
    # objective's roll-up leaves the key result out.
    waiting: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class ObjectiveMeasure:
    """An objective's progress from its key results and children: independent of the clock."""

    key: str
    progress: float
    key_results: tuple[KeyResultMeasure, ...]


@dataclass(frozen=True)
class KeyResultProgress(KeyResultMeasure):
    """A key result's measure, judged at an instant."""

    expected: float
    status: Status


@dataclass(frozen=True)
class ObjectiveProgress:
    key: str
    progress: float
    expected: float
    status: Status
    key_results: tuple[KeyResultProgress, ...]


def series_value(metric: SimpleMetric, state: SeriesState | None) -> float | None:
    """The aggregate of one series; None for a level aggregate that has seen no event."""
    if metric.additive:
        return state.total if state is not None else 0.0
    return state.level if state is not None else None


def metric_value(kr: KeyResult, state: KeyResultState) -> float | None:
    """The raw aggregate (additive: over the period, without baseline); None: no value yet."""
    return value_of(kr.metric, state)


def value_of(metric: SimpleMetric | RatioMetric, state: KeyResultState) -> float | None:
    """A metric's value from its series' states (a key result's or a KPI's): the aggregate,
    or the ratio of the two parts (None while the denominator is 0 or a part has no value)."""
    if isinstance(metric, RatioMetric):
        num = series_value(metric.numerator, state.get("numerator"))
        den = series_value(metric.denominator, state.get("denominator"))
        if num is None or den is None or den == 0:
            return None
        return num / den
    return series_value(metric, state.get("value"))


def measure_key_result(
    kr: KeyResult, period: Period, tz: str, state: KeyResultState
) -> KeyResultMeasure:
    """Value and progress of one key result from what was counted (no clock involved)."""
    raw = metric_value(kr, state)
    last = max(
        (s.last_event_at for part, s in state.items() if s.last_event_at and part[:2] != "b."),
        default=None,
    )  # not a baseline's series (`b.value`: the events of its window, domain.baselines)
    if kr.cadence is not None:
        slots = cadence_slots(period, kr.cadence, tz)
        n = kr.cadence.at_least
        counts = state.get("value", SeriesState()).day_counts
        per_slot: dict[int, int] = {}
        slot_index = slot_of_day(period, kr.cadence, tz)
        for day, count in counts.items():  # only the days that had events
            i = slot_index.get(day)
            if i is not None:
                per_slot[i] = per_slot.get(i, 0) + count
        value = float(sum(min(c, n) for c in per_slot.values()))
        baseline, target = 0.0, float(n * len(slots))
        progress = value / target if target else 0.0
        has_value = True
    else:
        additive = isinstance(kr.metric, SimpleMetric) and kr.metric.additive
        if additive and kr.baseline_from is not None:
            # Measured from data: `history` counts the days before the period in the value
            # itself (B + the period's); a `previous_period` total starts at 0.
            value = raw or 0.0
        elif additive:
            value = kr.baseline + (raw or 0.0)
        else:
            value = raw if raw is not None else kr.baseline
        baseline, has_value = kr.baseline, raw is not None or additive
        if kr.maintain is not None:
            # A ratio without a denominator yet has no value: the condition holds.
            holds = (raw is None and isinstance(kr.metric, RatioMetric)) or kr.maintain.holds(value)
            progress = 1.0 if holds else 0.0
            bound = kr.maintain.below if kr.maintain.below is not None else kr.maintain.above
            target = float(bound) if bound is not None else 0.0
            has_value = raw is not None
        else:
            target = kr.target if kr.target is not None else math.nan  # None: waits for B
            if additive and kr.baseline_from == "previous_period":
                progress = _share(value, 0.0, target)  # period totals compared: V / T
            else:
                progress = _share(value, kr.baseline, target)
        if kr.baseline_waiting:
            baseline, target, progress = math.nan, math.nan, math.nan
    return KeyResultMeasure(
        kr.key, value, baseline, target, progress, has_value, last, waiting=kr.baseline_waiting
    )


def _share(value: float, baseline: float, target: float) -> float:
    """(V - B) / (T - B); with T = B (a measured baseline can make "+15%" of 0 equal it),
    1 once the value reaches the target, else 0."""
    if target == baseline:
        return 1.0 if value >= target else 0.0
    return (value - baseline) / (target - baseline)


def key_result_progress(
    kr: KeyResult, period: Period, tz: str, state: KeyResultState, now: datetime,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> KeyResultProgress:  # fmt: skip
    """Value, progress, expected and status of one key result at `now` (an aware datetime)."""
    return _judged_key_result(kr, period, tz, measure_key_result(kr, period, tz, state), now,
                              thresholds)  # fmt: skip


def _judged_key_result(
    kr: KeyResult, period: Period, tz: str, m: KeyResultMeasure, now: datetime,
    thresholds: Thresholds,
) -> KeyResultProgress:  # fmt: skip
    expected, status = judge_key_result(kr, period, tz, m.progress, now, thresholds)
    return KeyResultProgress(
        **{f.name: getattr(m, f.name) for f in fields(KeyResultMeasure)},
        expected=expected, status=status,
    )  # fmt: skip


def measure_objective(
    objective: Objective, tz: str, states: Mapping[str, KeyResultState],
    children: tuple[tuple[float, float], ...] = (),
) -> ObjectiveMeasure:  # fmt: skip
    """Weighted mean of clamped key-result progress and child-objective progress.

    `states` maps key-result keys to their state; `children` are (weight, progress) of the
    objectives whose parent this is.
    """
    krs = tuple(
        measure_key_result(kr, objective.period, tz, states.get(kr.key, {}))
        for kr in objective.key_results
    )
    weighted = [
        (kr.weight, clamp01(m.progress))
        for kr, m in zip(objective.key_results, krs, strict=True)
        if not m.waiting  # a baseline not measured yet: the others' weights
    ]
    weighted += [(w, clamp01(child)) for w, child in children]
    total_weight = sum(w for w, _ in weighted)
    progress = sum(w * p for w, p in weighted) / total_weight if total_weight else 0.0
    return ObjectiveMeasure(objective.key, progress, krs)


def objective_progress(
    objective: Objective, tz: str, states: Mapping[str, KeyResultState], now: datetime,
    children: tuple[tuple[float, ObjectiveProgress], ...] = (),
) -> ObjectiveProgress:  # fmt: skip
    """`measure_objective`, with expected pace and status at `now` for it and its key results."""
    measure = measure_objective(objective, tz, states, tuple((w, c.progress) for w, c in children))
    return _judged_objective(objective, tz, measure, now)


def _judged_objective(
    objective: Objective, tz: str, m: ObjectiveMeasure, now: datetime
) -> ObjectiveProgress:
    krs = tuple(
        _judged_key_result(kr, objective.period, tz, km, now, objective.thresholds)
        for kr, km in zip(objective.key_results, m.key_results, strict=True)
    )
    expected, status = judge_objective(objective, tz, m.progress, now)
    return ObjectiveProgress(objective.key, m.progress, expected, status, krs)


def measure_plan(
    plan: Plan, states: Mapping[tuple[str, str], KeyResultState]
) -> dict[str, ObjectiveMeasure]:
    """Every objective of `plan` from what was counted; children are measured before their
    parents. `states` maps (objective key, key-result key) to what has been counted."""
    children: dict[str, list[str]] = {}
    for o in plan.objectives:
        if o.parent is not None:
            children.setdefault(o.parent, []).append(o.key)
    done: dict[str, ObjectiveMeasure] = {}
    by_key = {o.key: o for o in plan.objectives}
    for o in plan.objectives:
        _measure_with_children(o.key, plan.timezone, by_key, children, states, done)
    return {o.key: done[o.key] for o in plan.objectives}


def _measure_with_children(
    key: str, tz: str, by_key: Mapping[str, Objective], children: Mapping[str, list[str]],
    states: Mapping[tuple[str, str], KeyResultState], done: dict[str, ObjectiveMeasure],
) -> ObjectiveMeasure:  # fmt: skip
    # A module-level function, not a closure calling itself: that closure would be a
    # reference cycle keeping every measure alive until the garbage collector runs.
    if key not in done:
        objective = by_key[key]
        kids = tuple(
            (
                by_key[c].weight,
                _measure_with_children(c, tz, by_key, children, states, done).progress,
            )
            for c in children.get(key, ())
        )
        kr_states = {kr.key: states.get((key, kr.key), {}) for kr in objective.key_results}
        done[key] = measure_objective(objective, tz, kr_states, kids)
    return done[key]


def plan_progress(
    plan: Plan, states: Mapping[tuple[str, str], KeyResultState], now: datetime
) -> dict[str, ObjectiveProgress]:
    """Every objective of `plan` at `now`: `measure_plan`, judged at `now`."""
    return judge_plan(plan, measure_plan(plan, states), now)


def judge_plan(
    plan: Plan, measures: Mapping[str, ObjectiveMeasure], now: datetime
) -> dict[str, ObjectiveProgress]:
    """`measure_plan`'s measures judged at `now` (the pages measure once per snapshot and
    judge at every request: pace and status move with the clock)."""
    return {
        o.key: _judged_objective(o, plan.timezone, measures[o.key], now) for o in plan.objectives
    }
