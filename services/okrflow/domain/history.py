"""Folding a series' per-day buckets into what was counted: now, as of the end of a local
day (`okrflow progress --as-of`), or day by day in one pass (`okrflow history`). Pure.

Every aggregate is stored per local day of the plan's time zone (`kr_day_totals`): events
and total (count_distinct: the values whose earliest event falls on that day), the day's
level for latest / max / min and when it was reached, the day's newest event time. So the
state as of the end of day D is the fold of the days up to D, for every aggregate:
"events up to local midnight after D" exactly, whatever order the events arrived in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar

from okrflow.domain.model import metric_parts
from okrflow.domain.periods import local_midnight
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import SeriesState
from okrflow.domain.series import SeriesKey, merge_level

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class DayRow:
    """One stored day bucket of a series (times are aware UTC)."""

    day: date
    events: int
    total: float
    level: float | None = None
    level_at: datetime | None = None
    last_event_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """The series' running summary (`kr_series`), kept by the same transactions as the days:
    for data written since the per-day levels exist it equals the fold of every day; before
    that it is the only record of a level."""

    events: int
    level: float | None
    level_at: datetime | None
    last_event_at: datetime | None


@dataclass(frozen=True)
class SeriesRows:
    """What is stored for one series: its days in ascending order, and its summary."""

    days: Sequence[DayRow] = ()
    stored: StoredSeries | None = None


class DayView(Mapping[date, V]):
    """Values per day up to a day, as a view of a running fold's append-only day list: taking
    one costs O(1), so a day-by-day pass stays O(days) per series."""

    __slots__ = ("_days", "_n", "_values")

    def __init__(self, days: list[date], values: dict[date, V], n: int) -> None:
        self._days, self._values, self._n = days, values, n

    def __getitem__(self, day: date) -> V:
        if self._n and day <= self._days[self._n - 1] and day in self._values:
            return self._values[day]
        raise KeyError(day)

    def __iter__(self) -> Iterator[date]:
        return iter(self._days[: self._n])

    def __len__(self) -> int:
        return self._n


@dataclass
class _Fold:
    """A running fold of one series' days, in ascending order."""

    aggregate: str | None  # None: levels are not folded (the summary gives them)
    events: int = 0
    total: float = 0.0
    level: float | None = None
    level_at: datetime | None = None
    last_event_at: datetime | None = None
    days: list[date] = field(default_factory=list)
    counts: dict[date, int] = field(default_factory=dict)
    totals: dict[date, float] = field(default_factory=dict)
    level_days: list[date] = field(default_factory=list)
    levels: dict[date, float] = field(default_factory=dict)

    def add(self, row: DayRow) -> None:
        self.events += row.events
        self.total += row.total
        self.days.append(row.day)
        self.counts[row.day] = row.events
        self.totals[row.day] = row.total
        if row.level is not None:
            self.level_days.append(row.day)
            self.levels[row.day] = row.level
        if self.aggregate is not None and row.level is not None and row.level_at is not None:
            self.level, self.level_at = merge_level(
                self.aggregate, self.level, self.level_at, row.level, row.level_at
            )
        if row.last_event_at is not None and (
            self.last_event_at is None or row.last_event_at > self.last_event_at
        ):
            self.last_event_at = row.last_event_at

    def state(self, end: datetime, stored: StoredSeries | None) -> SeriesState:
        """The state at instant `end` (the local midnight after the last day folded in). The
        summary's level counts where it was reached before `end`: that is exact (latest: its
        time is the newest of all events; max/min: the extreme of all events was reached by
        then), and it covers levels counted before the per-day levels existed."""
        level, level_at, last = self.level, self.level_at, self.last_event_at
        if stored is not None and self.aggregate is not None:
            if stored.level is not None and stored.level_at is not None and stored.level_at < end:
                level, level_at = merge_level(
                    self.aggregate, level, level_at, stored.level, stored.level_at
                )
            if stored.last_event_at is not None and stored.last_event_at < end:
                last = stored.last_event_at if last is None else max(last, stored.last_event_at)
        return SeriesState(
            events=self.events,
            total=self.total,
            level=level,
            day_counts=DayView(self.days, self.counts, len(self.days)),
            day_totals=DayView(self.days, self.totals, len(self.days)),
            day_levels=DayView(self.level_days, self.levels, len(self.level_days)),
            last_event_at=last,
        )


def current_state(
    days: Iterable[tuple[date, int, float, float | None]], stored: StoredSeries | None
) -> SeriesState:
    """Everything counted so far (what `progress` and the exporter show) from the days'
    (day, events, total, level) and the summary: the additive fold of every day, with the events,
    level and newest event time of the summary, which also holds the levels counted before
    per-day levels existed (upgrade, design 2.3). The exporter calls this for every series
    at every refresh, so it reads no more than that."""
    total = 0.0
    counts: dict[date, int] = {}
    totals: dict[date, float] = {}
    levels: dict[date, float] = {}
    for day, events, day_total, level in days:
        total += day_total
        counts[day] = events
        totals[day] = day_total
        if level is not None:
            levels[day] = level
    return SeriesState(
        events=stored.events if stored is not None else sum(counts.values()),
        total=total,
        level=stored.level if stored is not None else None,
        day_counts=counts,
        day_totals=totals,
        day_levels=levels,
        last_event_at=stored.last_event_at if stored is not None else None,
    )


def states_by_day(
    aggregate: str, series: SeriesRows, days: Sequence[date], tz: str
) -> list[SeriesState]:
    """The series as it stood at the end of each of `days` (ascending local days of `tz`),
    in one pass over its stored days."""
    fold = _Fold(aggregate)
    rows = series.days
    i, out = 0, []
    for day in days:
        while i < len(rows) and rows[i].day <= day:
            fold.add(rows[i])
            i += 1
        out.append(fold.state(end_of_day(day, tz), series.stored))
    return out


def state_as_of(aggregate: str, series: SeriesRows, day: date, tz: str) -> SeriesState:
    """The series as it stood at the end of local day `day`: events up to local midnight."""
    return states_by_day(aggregate, series, [day], tz)[0]


def state_between(
    aggregate: str, rows: Iterable[DayRow], first: date, last: date, tz: str
) -> SeriesState:
    """The fold of the stored days in [first, last] only (a KPI's rolling window), as it
    stood at the end of local day `last`. No summary: a window never reaches before the
    per-day levels existed (KPIs came after them)."""
    fold = _Fold(aggregate)
    for row in rows:
        if first <= row.day <= last:
            fold.add(row)
    return fold.state(end_of_day(last, tz), None)


def end_of_day(day: date, tz: str) -> datetime:
    """The instant a local day ends: the next day's local midnight, in UTC."""
    return local_midnight(day + timedelta(days=1), tz)


def plan_series(active: ActivePlan) -> Iterator[tuple[tuple[str, str], int, str, str]]:
    """Every series of a plan: ((objective, key result), key-result id, part, aggregate)."""
    for objective in active.plan.objectives:
        for kr in objective.key_results:
            kr_id = active.key_result_ids[objective.key, kr.key]
            for part, metric in metric_parts(kr.metric):
                yield (objective.key, kr.key), kr_id, part, metric.aggregate


KeyResultStates = dict[tuple[str, str], dict[str, SeriesState]]


def plan_states_by_day(
    active: ActivePlan, stored: Mapping[SeriesKey, SeriesRows], days: Sequence[date]
) -> list[KeyResultStates]:
    """For each of `days`, every key result's state at the end of that day (the mapping
    `plan_progress` takes). O(days) per series."""
    out: list[KeyResultStates] = [{} for _ in days]
    tz = active.plan.timezone
    for pair, kr_id, part, aggregate in plan_series(active):
        series = stored.get((kr_id, part), SeriesRows())
        for by_day, state in zip(out, states_by_day(aggregate, series, days, tz), strict=True):
            by_day.setdefault(pair, {})[part] = state
    return out


def plan_states_as_of(
    active: ActivePlan, stored: Mapping[SeriesKey, SeriesRows], day: date
) -> KeyResultStates:
    """Every key result's state at the end of local day `day` (`progress --as-of`)."""
    return plan_states_by_day(active, stored, [day])[0]
