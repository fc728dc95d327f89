"""Baselines measured from data (`baseline: {from: history | previous_period}`): which series
a key result counts, over which window, and the baseline B folded from them. Pure.

docs/formulas.md ("Baselines from data") and docs/design/history-and-backfill.md 3.1-3.3:

- `history`, additive metric (count, sum, count_distinct): the value series itself counts
  every event before the period too (window (-inf, end)), so a count_distinct's pre-period
  values sit in the same set and a returning client is not counted again. B is the fold of
  its days before the period's first day; V is the fold of every day (B + the period's).
  Once B is frozen the window is the period again: an event dated before the period that
  arrives later changes nothing.
- `history`, level or ratio metric, and `previous_period`: extra series `b.value` (or
  `b.numerator`, `b.denominator`) count the baseline's window, (-inf, S) or the L local days
  [S - L, S) just before the period (L: the period's number of days), until the freeze.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from okrflow.domain.history import SeriesRows, state_as_of
from okrflow.domain.model import KeyResult, Period, SimpleMetric, metric_parts
from okrflow.domain.periods import local_midnight, period_bounds
from okrflow.domain.progress import SeriesState, metric_value

BASELINE_PART_PREFIX = "b."


@dataclass(frozen=True, slots=True)
class CountedSeries:
    """One series a key result counts: its part, its metric, its window [start, end) as unix
    times (-inf for every event before `end`)."""

    part: str
    metric: SimpleMetric
    start: float
    end: float


def spans_history(kr: KeyResult) -> bool:
    """`from: history` over an additive metric: the value series reaches into the past."""
    metric = kr.metric
    return kr.baseline_from == "history" and isinstance(metric, SimpleMetric) and metric.additive


def baseline_window(kr: KeyResult, period: Period, tz: str) -> tuple[float, float]:
    """The window B is measured over, [start, end) as unix times."""
    start = period_bounds(period, tz)[0]
    if kr.baseline_from == "previous_period":
        length = (period.end - period.start).days + 1
        before = local_midnight(period.start - timedelta(days=length), tz)
        return before.timestamp(), start.timestamp()
    return -math.inf, start.timestamp()


def counted_series(kr: KeyResult, period: Period, tz: str) -> tuple[CountedSeries, ...]:
    """The series the live worker and the backfill count for `kr`, with their windows."""
    start, end = (t.timestamp() for t in period_bounds(period, tz))
    parts = metric_parts(kr.metric)
    if kr.baseline_from is None or not kr.baseline_waiting:
        return tuple(CountedSeries(p, m, start, end) for p, m in parts)
    if spans_history(kr):
        return tuple(CountedSeries(p, m, -math.inf, end) for p, m in parts)
    b_start, b_end = baseline_window(kr, period, tz)
    return tuple(CountedSeries(p, m, start, end) for p, m in parts) + tuple(
        CountedSeries(BASELINE_PART_PREFIX + p, m, b_start, b_end) for p, m in parts
    )


def stored_parts(kr: KeyResult) -> tuple[str, ...]:
    """Every series part a new row of `kr` keeps: its metric's, and its baseline's (if any)."""
    parts = tuple(p for p, _ in metric_parts(kr.metric))
    if kr.baseline_from is None or spans_history(kr):
        return parts
    return parts + tuple(BASELINE_PART_PREFIX + p for p in parts)


def fold_baseline(
    kr: KeyResult, period: Period, tz: str, rows: Mapping[str, SeriesRows]
) -> float | None:
    """B from the stored series of `kr` (part -> rows): the metric over the days before the
    period's first day, folded exactly as `progress --as-of` folds (None: a level or ratio
    with no usable event in the window)."""
    last = period.start - timedelta(days=1)
    history = spans_history(kr)
    states: dict[str, SeriesState] = {}
    for part, metric in metric_parts(kr.metric):
        source = part if history else BASELINE_PART_PREFIX + part
        states[part] = state_as_of(metric.aggregate, rows.get(source, SeriesRows()), last, tz)
    return metric_value(kr, states)
