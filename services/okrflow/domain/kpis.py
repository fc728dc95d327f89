"""KPIs over rolling windows of local days: their value and health at an instant, or at the
end of each day (docs/formulas.md, "KPIs"). Pure.

A KPI's series count every event, per local day of the shop's time zone (`kr_day_totals`,
the same per-day rows as key results). Its value at instant t folds the days of its window:
today = the local date at t, and the n days [today - (n - 1), today]. Days are local dates,
so a 23- or 25-hour day is one day, and the window moves at local midnight, never by
24 hours of UTC. count_distinct counts the distinct values seen on any day of the window
(`kpi_distinct_days`), not the sum of each day's new values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from okrflow.domain.history import DayRow, state_between
from okrflow.domain.model import Kpi, Maintain, metric_parts
from okrflow.domain.progress import SeriesState, value_of


@dataclass(frozen=True)
class KpiProgress:
    """A KPI as `progress`, `history` and the exporter show it.

    `value` is None while the window holds no value (a level metric with no event in it, a
    ratio whose denominator is 0); `healthy` is None without a band or without a value;
    `band` reads like the plan (`above 20`, `below 0.05`) or is empty; `backfill` is the
    state of the KPI's backfill (None: none; "pending", "running": the value is partial;
    "done")."""

    key: str
    title: str
    window_days: int
    first_day: date  # the window's first and last local days, both included
    last_day: date
    value: float | None
    healthy: bool | None
    band: str
    backfill: str | None = None

    @property
    def has_value(self) -> bool:
        return self.value is not None

    @property
    def window(self) -> str:
        return f"{self.window_days}d"


def window_of(today: date, window_days: int) -> tuple[date, date]:
    """The local days a window of `window_days` ending `today` holds (both included)."""
    return today - timedelta(days=window_days - 1), today


def band_text(healthy: Maintain | None) -> str:
    """`above 20`, `below 0.05`, or "" without a band."""
    if healthy is None:
        return ""
    if healthy.above is not None:
        return f"above {healthy.above:g}"
    return f"below {healthy.below:g}"


def kpi_value(kpi: Kpi, states: Mapping[str, SeriesState]) -> float | None:
    """The KPI's value from its series' states over the window (as a key result's)."""
    return value_of(kpi.metric, states)


def window_states(
    kpi: Kpi,
    days: Mapping[str, Sequence[DayRow]],
    distinct: Mapping[str, int],
    first: date,
    last: date,
    tz: str,
) -> dict[str, SeriesState]:
    """Each series part's state over the local days [first, last]: the fold of those days'
    rows (`days`: part -> ascending rows); a count_distinct part's total is its number of
    distinct values over the window (`distinct`: part -> count)."""
    states = {}
    for part, metric in metric_parts(kpi.metric):
        state = state_between(metric.aggregate, days.get(part, ()), first, last, tz)
        if metric.aggregate == "count_distinct":
            state = SeriesState(state.events, float(distinct.get(part, 0)), None, {})
        states[part] = state
    return states


def kpi_progress(
    kpi: Kpi,
    days: Mapping[str, Sequence[DayRow]],
    distinct: Mapping[str, int],
    today: date,
    tz: str,
    backfill: str | None = None,
) -> KpiProgress:
    """The KPI over the window ending on local day `today`. `distinct` holds each
    count_distinct part's distinct values over that same window."""
    first, last = window_of(today, kpi.window_days)
    value = kpi_value(kpi, window_states(kpi, days, distinct, first, last, tz))
    healthy = None if kpi.healthy is None or value is None else kpi.healthy.holds(value)
    return KpiProgress(
        kpi.key, kpi.title, kpi.window_days, first, last, value, healthy,
        band_text(kpi.healthy), backfill,
    )  # fmt: skip


def distinct_by_window(
    seen: Iterable[tuple[date, str]], days: Sequence[date], window_days: int
) -> list[int]:
    """For each of `days` (ascending), the number of distinct values seen (`seen`: (local
    day, value) pairs) on the `window_days` days ending that day. One sliding pass."""
    by_day: dict[date, set[str]] = {}
    for day, value in seen:
        by_day.setdefault(day, set()).add(value)
    counts: Counter[str] = Counter()
    out: list[int] = []
    lo = hi = None  # the days currently in `counts`, both included
    for day in days:
        first, last = window_of(day, window_days)
        if lo is None or hi is None or first > hi or first < lo:
            counts.clear()
            lo, hi = first, first - timedelta(days=1)
        while hi < last:
            hi += timedelta(days=1)
            counts.update(by_day.get(hi, ()))
        while lo < first:
            for value in by_day.get(lo, ()):
                counts[value] -= 1
                if counts[value] == 0:
                    del counts[value]
            lo += timedelta(days=1)
        out.append(len(counts))
    return out
