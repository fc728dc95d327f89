"""Objectives, key results and their metrics, as `okrs.yaml` defines them (docs/plan-files.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

Aggregate = Literal["count", "sum", "count_distinct", "latest", "max", "min"]
ADDITIVE: frozenset[str] = frozenset({"count", "sum", "count_distinct"})
NEEDS_FIELD: frozenset[str] = frozenset({"sum", "count_distinct", "latest", "max", "min"})
FilterOp = Literal["eq", "in", "gt", "gte", "lt", "lte"]
Status = Literal["not_started", "achieved", "missed", "on_track", "at_risk", "off_track"]
STATUSES: tuple[Status, ...] = (
    "not_started", "on_track", "at_risk", "off_track", "achieved", "missed",
)  # fmt: skip
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Where a baseline measured from data comes from (`baseline: {from: ...}`, docs/formulas.md).
BaselineFrom = Literal["history", "previous_period"]


@dataclass(frozen=True)
class Filter:
    """`where` condition: the value at `path` (e.g. ("data", "platform")) compared by `op`."""

    path: tuple[str, ...]
    op: FilterOp
    # Any: the plan's JSON scalar (a tuple of them for `in`), compared with an event's value
    # of any type by plans.matching; typed, each comparison there would need narrowing
    value: Any


@dataclass(frozen=True)
class SimpleMetric:
    """Events of one type, filtered, aggregated (over `field` unless `count`)."""

    event: str
    aggregate: Aggregate
    field: tuple[str, ...] | None = None
    where: tuple[Filter, ...] = ()

    @property
    def additive(self) -> bool:
        return self.aggregate in ADDITIVE


@dataclass(frozen=True)
class RatioMetric:
    numerator: SimpleMetric
    denominator: SimpleMetric


Metric = SimpleMetric | RatioMetric


def metric_parts(metric: Metric) -> tuple[tuple[str, SimpleMetric], ...]:
    """The counted series of a metric: ("value", m) or ("numerator", n), ("denominator", d)."""
    if isinstance(metric, RatioMetric):
        return (("numerator", metric.numerator), ("denominator", metric.denominator))
    return (("value", metric),)


@dataclass(frozen=True)
class Cadence:
    """`at_least` events in every slot: local days (on `weekdays`), ISO weeks or months."""

    every: Literal["day", "week", "month"]
    at_least: int
    weekdays: frozenset[int] = frozenset(range(7))  # 0 = Monday


@dataclass(frozen=True)
class Maintain:
    below: float | None = None
    above: float | None = None

    def holds(self, value: float) -> bool:
        if self.below is not None and not value < self.below:
            return False
        return self.above is None or value > self.above


@dataclass(frozen=True)
class Period:
    """Inclusive local dates."""

    start: date
    end: date


@dataclass(frozen=True)
class Thresholds:
    at_risk: float = 0.10
    off_track: float = 0.25


@dataclass(frozen=True)
class KeyResult:
    key: str
    title: str
    metric: Metric
    baseline: float = 0.0
    target: float | None = None  # None for cadence and maintain key results
    weight: float = 1.0
    cadence: Cadence | None = None
    maintain: Maintain | None = None
    # `baseline: {from: history | previous_period}`: `baseline` is the measured value once
    # frozen; until then `baseline_waiting` (no baseline, target or progress yet).
    baseline_from: BaselineFrom | None = None
    baseline_waiting: bool = False


@dataclass(frozen=True)
class Objective:
    key: str
    title: str
    owner: str
    level: str
    period: Period
    key_results: tuple[KeyResult, ...]
    thresholds: Thresholds = Thresholds()
    parent: str | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class Kpi:
    """A key performance indicator: a metric over a rolling window of local days (today
    included), with an optional healthy band (`healthy: {above: X}` or `{below: X}`)."""

    key: str
    title: str
    metric: Metric
    window_days: int
    healthy: Maintain | None = None


@dataclass(frozen=True)
class Plan:
    """One shop's whole set of objectives (one `okrs.yaml`), and its KPIs."""

    shop: str
    timezone: str
    objectives: tuple[Objective, ...]
    kpis: tuple[Kpi, ...] = ()
