"""Folding per-day buckets (domain.history) equals aggregating the raw events directly, for
each aggregate, as of the end of any local day; local midnights across Europe/Rome's DST
changes."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from okrflow.domain.history import (
    DayRow,
    DayView,
    SeriesRows,
    StoredSeries,
    current_state,
    end_of_day,
    state_as_of,
    states_by_day,
)
from okrflow.domain.periods import local_day
from okrflow.domain.series import SeriesDelta, merge_level

TZ = "Europe/Rome"
ROME = ZoneInfo(TZ)
SPRING = datetime(2026, 3, 29, 1, tzinfo=UTC)  # 02:00 -> 03:00 local
AUTUMN = datetime(2026, 10, 25, 1, tzinfo=UTC)  # 03:00 -> 02:00 local
AGGREGATES = ("count", "sum", "count_distinct", "latest", "max", "min")

Event = tuple[datetime, float]  # (time, value); count_distinct reads the value as text


def _stored_days(aggregate: str, batches: list[list[Event]]) -> list[DayRow]:
    """What the batch transactions leave in kr_day_totals: each batch's SeriesDelta merged
    into the stored days the way store.counters does (events and totals add, levels merge by
    merge_level in arrival order, the newest event time wins, a distinct value lives on the
    earliest day of any event carrying it)."""
    days: dict[date, list[float]] = {}
    levels: dict[date, tuple[float, datetime]] = {}
    last: dict[date, datetime] = {}
    first_day: dict[str, date] = {}
    for batch in batches:
        delta = SeriesDelta(aggregate)
        for at, value in batch:
            delta.add(at, local_day(at, TZ), str(value) if aggregate == "count_distinct" else value)
        for day, (events, total) in delta.days.items():
            bucket = days.setdefault(day, [0, 0.0])
            bucket[0] += events
            bucket[1] += total
        for day, (level, level_at) in delta.day_levels.items():
            old_level, old_at = levels.get(day, (None, None))
            levels[day] = merge_level(aggregate, old_level, old_at, level, level_at)
        for day, at in delta.day_last_event_at.items():
            last[day] = max(at, last.get(day, at))
        for text, day in delta.distinct.items():
            old_day = first_day.get(text)
            if old_day is None or day < old_day:
                if old_day is not None:
                    days[old_day][0] -= 1
                    days[old_day][1] -= 1
                bucket = days.setdefault(day, [0, 0.0])
                bucket[0] += 1
                bucket[1] += 1
                first_day[text] = day
    for day in last:
        days.setdefault(day, [0, 0.0])
    rows = []
    for day in sorted(days):
        day_level, day_level_at = levels.get(day, (None, None))
        rows.append(
            DayRow(day, int(days[day][0]), days[day][1], day_level, day_level_at, last.get(day))
        )
    return rows


def _direct(aggregate: str, events: list[Event], end: datetime) -> float | None:
    """The aggregate over the events before `end`, computed from the raw list."""
    before = [(i, at, v) for i, (at, v) in enumerate(events) if at < end]
    if aggregate == "count":
        return float(len(before))
    if aggregate == "sum":
        return float(sum(v for _, _, v in before))
    if aggregate == "count_distinct":
        return float(len({str(v) for _, _, v in before}))
    if not before:
        return None
    if aggregate == "latest":
        return max(before, key=lambda e: (e[1], e[0]))[2]  # a tie: the later arrival
    values = [v for _, _, v in before]
    return max(values) if aggregate == "max" else min(values)


def _event(around: datetime) -> st.SearchStrategy[Event]:
    # Whole minutes, 4 days either side: equal times (ties) happen, local days of 23/25 hours.
    return st.tuples(
        st.integers(-4 * 24 * 60, 4 * 24 * 60).map(lambda m: around + timedelta(minutes=m)),
        st.sampled_from([-3.5, 0.0, 1.0, 2.0, 7.25, 100.0]),
    )


@st.composite
def _batched(draw: st.DrawFn) -> tuple[datetime, list[Event], list[list[Event]]]:
    around = draw(st.sampled_from([SPRING, AUTUMN]))
    events = draw(st.lists(_event(around), max_size=40))
    cuts = sorted(draw(st.lists(st.integers(0, len(events)), max_size=4)))
    bounds = [0, *cuts, len(events)]
    return around, events, [events[a:b] for a, b in itertools.pairwise(bounds)]


def _value(aggregate: str, state: object) -> float | None:
    from okrflow.domain.progress import SeriesState

    assert isinstance(state, SeriesState)
    return state.total if aggregate in ("count", "sum", "count_distinct") else state.level


@given(st.sampled_from(AGGREGATES), _batched())
def test_folding_the_days_equals_aggregating_the_events(
    aggregate: str, case: tuple[datetime, list[Event], list[list[Event]]]
) -> None:
    around, events, batches = case
    rows = SeriesRows(_stored_days(aggregate, batches))
    first = local_day(around, TZ) - timedelta(days=5)
    days = [first + timedelta(days=i) for i in range(11)]
    by_day = states_by_day(aggregate, rows, days, TZ)
    for day, state in zip(days, by_day, strict=True):
        end = end_of_day(day, TZ)
        expected = _direct(aggregate, events, end)
        assert _value(aggregate, state) == expected, (day, aggregate)
        assert _value(aggregate, state_as_of(aggregate, rows, day, TZ)) == expected
        before = [at for at, _ in events if at < end]
        assert state.last_event_at == (max(before) if before else None)
        if aggregate != "count_distinct":
            assert sum(state.day_counts.values()) == len(before)


@given(st.sampled_from(["latest", "max", "min"]), _batched())
def test_the_stored_summary_fills_levels_counted_before_per_day_levels(
    aggregate: str, case: tuple[datetime, list[Event], list[list[Event]]]
) -> None:
    """Rows written before migration 0004 have no day level: the kr_series summary counts
    as of every day after it was reached (exact), and for `now`."""
    _, events, _ = case
    if not events:
        return
    level: float | None = None
    level_at: datetime | None = None
    for at, value in events:
        level, level_at = merge_level(aggregate, level, level_at, value, at)
    assert level is not None and level_at is not None
    old_days = [DayRow(local_day(at, TZ), 1, 0.0) for at, _ in sorted(events)]
    merged: dict[date, DayRow] = {}
    for row in old_days:
        prev = merged.get(row.day)
        merged[row.day] = DayRow(row.day, row.events + (prev.events if prev else 0), 0.0)
    stored = StoredSeries(len(events), level, level_at, max(at for at, _ in events))
    rows = SeriesRows(sorted(merged.values(), key=lambda r: r.day), stored)
    assert (
        current_state([(r.day, r.events, r.total, r.level) for r in rows.days], stored).level
        == level
    )
    reached = local_day(level_at, TZ)
    assert state_as_of(aggregate, rows, reached, TZ).level == level
    assert state_as_of(aggregate, rows, reached - timedelta(days=1), TZ).level is None


def test_the_current_state_is_the_summary_and_the_sum_of_the_days() -> None:
    t = datetime(2026, 3, 2, 9, tzinfo=UTC)
    days = [(date(2026, 3, 1), 2, 5.0, None), (date(2026, 3, 2), 1, 1.5, 7.0)]
    state = current_state(days, StoredSeries(4, None, None, t))
    assert (state.events, state.total, state.last_event_at) == (4, 6.5, t)
    assert dict(state.day_counts) == {date(2026, 3, 1): 2, date(2026, 3, 2): 1}
    assert dict(state.day_totals) == {date(2026, 3, 1): 5.0, date(2026, 3, 2): 1.5}
    assert dict(state.day_levels) == {date(2026, 3, 2): 7.0}


def test_as_of_ends_at_local_midnight_across_the_dst_changes() -> None:
    # Spring: 29 March has 23 hours; autumn: 25 October has 25.
    assert end_of_day(date(2026, 3, 28), TZ) == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert end_of_day(date(2026, 3, 29), TZ) == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert end_of_day(date(2026, 10, 24), TZ) == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert end_of_day(date(2026, 10, 25), TZ) == datetime(2026, 10, 25, 23, tzinfo=UTC)
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        last_second = datetime.combine(day, datetime.max.time(), ROME).replace(microsecond=0)
        first_next = datetime.combine(day + timedelta(days=1), datetime.min.time(), ROME)
        events = [(last_second.astimezone(UTC), 1.0), (first_next.astimezone(UTC), 10.0)]
        for aggregate in ("count", "sum", "latest", "max"):
            rows = SeriesRows(_stored_days(aggregate, [events]))
            state = state_as_of(aggregate, rows, day, TZ)
            assert _value(aggregate, state) == 1.0, (day, aggregate)
            assert state.last_event_at == last_second.astimezone(UTC)
            after = state_as_of(aggregate, rows, day + timedelta(days=1), TZ)
            assert _value(aggregate, after) == {"count": 2.0, "sum": 11.0}.get(aggregate, 10.0)


def test_a_day_by_day_view_of_the_day_counts_shows_only_its_days() -> None:
    days = [date(2026, 1, 1), date(2026, 1, 3)]
    counts = {days[0]: 2, days[1]: 5}
    view = DayView(days, counts, 1)
    assert dict(view) == {days[0]: 2} and len(view) == 1
    assert days[1] not in view
