"""Which key results an event moves: an index by (shop, type), then period and filters. Pure."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from okrflow.domain.baselines import counted_series
from okrflow.domain.model import Filter, SimpleMetric, metric_parts
from okrflow.domain.plans import ActivePlan
from okrflow.events import CloudEvent

_MISSING = object()


Predicate = Callable[[CloudEvent], bool]


@dataclass(frozen=True, slots=True)
class Target:
    """One way of counting events (metric, time zone, period) and every key-result series
    that counts exactly that way: 100 objectives with the same "new clients" key result are
    one target, so an event is matched and aggregated once, not once per key result."""

    series: list[tuple[int, str]]  # (key_result_id, part): value | numerator | denominator
    metric: SimpleMetric
    timezone: str
    start: float  # unix time, inclusive
    end: float  # unix time, exclusive
    accepts: Predicate | None  # every `where` filter, compiled (None: no filter)
    # A KPI's way of counting (window -inf..+inf): a count_distinct also keeps every day
    # each value was seen, for its rolling windows (`kpi_distinct_days`).
    rolling: bool = False


def path_value(event: CloudEvent, path: tuple[str, ...]) -> object:
    """The value at an envelope attribute or `data.*` path; `_MISSING` when absent."""
    if path[0] != "data":
        if path == ("time",):
            return event.time.isoformat()
        return getattr(event, path[0], _MISSING) if len(path) == 1 else _MISSING
    value: Any = event.data
    for part in path[1:]:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    # 1 == True in Python; in an event they are different things.
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def accepts(f: Filter, event: CloudEvent) -> bool:
    value = path_value(event, f.path)
    if value is _MISSING:
        return False
    if f.op == "eq":
        return _same(value, f.value)
    if f.op == "in":
        return any(_same(value, v) for v in f.value)
    if not is_number(value):
        return False
    if f.op == "gt":
        return bool(value > f.value)
    if f.op == "gte":
        return bool(value >= f.value)
    if f.op == "lt":
        return bool(value < f.value)
    return bool(value <= f.value)


def _data_equals(key: str, expected: Any) -> Predicate:
    def check(event: CloudEvent) -> bool:
        return _same(event.data.get(key, _MISSING), expected)

    return check


def _generic(f: Filter) -> Predicate:
    def check(event: CloudEvent) -> bool:
        return accepts(f, event)

    return check


def compile_filters(filters: tuple[Filter, ...]) -> Predicate | None:
    """One predicate for all filters, or None when there is none. The common
    `data.<key> == value` skips the generic path walk: this runs for every event and every
    candidate key result."""
    checks = [
        _data_equals(f.path[1], f.value)
        if f.op == "eq" and len(f.path) == 2 and f.path[0] == "data"
        else _generic(f)
        for f in filters
    ]
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]

    def all_of(event: CloudEvent) -> bool:
        return all(check(event) for check in checks)

    return all_of


class MatchIndex:
    """Targets by (shop, event type), built from the plans in force."""

    def __init__(self, plans: Iterable[ActivePlan]) -> None:
        self._by_type: dict[tuple[str, str], list[Target]] = {}
        self._kpi_targets: dict[tuple[str, SimpleMetric, str], Target] = {}
        # Shop -> the event types its plan names: the shops and types whose event totals are
        # kept (labels come from definitions, never from payloads).
        self.planned_types: dict[str, set[str]] = {}
        by_signature: dict[tuple[str, SimpleMetric, str, float, float], Target] = {}
        self.target_count = 0  # key-result series
        for active in plans:
            plan = active.plan
            named = self.planned_types.setdefault(plan.shop, set())
            for objective in plan.objectives:
                for kr in objective.key_results:
                    kr_id = active.key_result_ids[objective.key, kr.key]
                    # Each series with its window: the period, or wider for a baseline
                    # measured from data (domain.baselines; different windows: other targets).
                    for counted in counted_series(kr, objective.period, plan.timezone):
                        part, metric = counted.part, counted.metric
                        start, end = counted.start, counted.end
                        named.add(metric.event)
                        signature = (plan.shop, metric, plan.timezone, start, end)
                        target = by_signature.get(signature)
                        if target is None:
                            target = by_signature[signature] = Target(
                                [], metric, plan.timezone, start, end,
                                compile_filters(metric.where),
                            )  # fmt: skip
                            self._by_type.setdefault((plan.shop, metric.event), []).append(target)
                        target.series.append((kr_id, part))
                        self.target_count += 1
            self._add_kpis(active, named)

    def _add_kpis(self, active: ActivePlan, named: set[str]) -> None:
        """KPI series count every event, whenever it happened: their windows roll, so every
        local day is kept. They share targets only with KPIs counting the same way."""
        plan = active.plan
        for kpi in plan.kpis:
            for part, metric in metric_parts(kpi.metric):
                named.add(metric.event)
                signature = (plan.shop, metric, plan.timezone)
                target = self._kpi_targets.get(signature)
                if target is None:
                    target = self._kpi_targets[signature] = Target(
                        [], metric, plan.timezone, -math.inf, math.inf,
                        compile_filters(metric.where), rolling=True,
                    )  # fmt: skip
                    self._by_type.setdefault((plan.shop, metric.event), []).append(target)
                target.series.append((active.kpi_ids[kpi.key], part))
                self.target_count += 1

    def restricted_to(self, measure_ids: Iterable[int]) -> MatchIndex:
        """The same index with only the series of `measure_ids` (a backfill counts only its
        job's key results: a target shared with others keeps just their series)."""
        wanted = set(measure_ids)
        index = MatchIndex([])
        for (shop, type_), targets in self._by_type.items():
            for target in targets:
                series = [s for s in target.series if s[0] in wanted]
                if series:
                    index._by_type.setdefault((shop, type_), []).append(
                        replace(target, series=series)
                    )
                    index.planned_types.setdefault(shop, set()).add(type_)
                    index.target_count += len(series)
        return index

    def candidates(self, shop: str, event_type: str) -> list[Target] | None:
        """The targets of a shop's event type, before their periods and filters."""
        return self._by_type.get((shop, event_type))

    def targets(self, event: CloudEvent, timestamp: float | None = None) -> list[Target]:
        """The ways this event is counted: its shop and type, its time inside the period,
        every filter accepting it. `timestamp` is `event.time.timestamp()` if already known
        (comparing aware datetimes of different zones costs ~1 µs each)."""
        candidates = self._by_type.get((event.shop, event.type))
        if not candidates:
            return []
        ts = event.time.timestamp() if timestamp is None else timestamp
        return [
            t for t in candidates
            if t.start <= ts < t.end and (t.accepts is None or t.accepts(event))
        ]  # fmt: skip
