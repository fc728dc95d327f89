"""Which key results an event moves: an index by (shop, type), then period and filters. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from okrflow.domain.model import Filter, SimpleMetric, metric_parts
from okrflow.domain.periods import period_bounds
from okrflow.events import CloudEvent
from okrflow.store.plans import ActivePlan

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Target:
    """One counted series of one key result."""

    key_result_id: int
    part: str  # value | numerator | denominator
    metric: SimpleMetric
    timezone: str
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive


def path_value(event: CloudEvent, path: tuple[str, ...]) -> Any:
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


def is_number(value: Any) -> bool:
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


class MatchIndex:
    """Targets by (shop, event type), built from the plans in force."""

    def __init__(self, plans: Iterable[ActivePlan]) -> None:
        self._by_type: dict[tuple[str, str], list[Target]] = {}
        self.target_count = 0
        for active in plans:
            plan = active.plan
            for objective in plan.objectives:
                start, end = period_bounds(objective.period, plan.timezone)
                for kr in objective.key_results:
                    kr_id = active.key_result_ids[objective.key, kr.key]
                    for part, metric in metric_parts(kr.metric):
                        target = Target(kr_id, part, metric, plan.timezone, start, end)
                        self._by_type.setdefault((plan.shop, metric.event), []).append(target)
                        self.target_count += 1

    def targets(self, event: CloudEvent) -> list[Target]:
        """The series this event counts in: its shop and type, its time inside the period,
        every filter accepting it."""
        candidates = self._by_type.get((event.shop, event.type))
        if not candidates:
            return []
        return [
            t for t in candidates
            if t.start <= event.time < t.end and all(accepts(f, event) for f in t.metric.where)
        ]  # fmt: skip
