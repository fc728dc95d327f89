"""KPI rolling windows (domain.kpis) against an independent computation: 1d, 7d and 30d
windows judged at 23:59:59 and 00:00:00 local time across Europe/Rome's March and October
DST changes, every aggregate and a ratio; and the parser's refusals of bad `kpis:`."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from okrflow.domain.history import DayRow
from okrflow.domain.kpis import distinct_by_window, kpi_progress, window_of
from okrflow.domain.model import Kpi, Maintain, RatioMetric, SimpleMetric
from okrflow.domain.periods import local_day
from okrflow.domain.series import SeriesDelta
from okrflow.plans.parse import PlanError, parse_plan

TZ = "Europe/Rome"
ROME = ZoneInfo(TZ)
AGGREGATES = ("count", "sum", "count_distinct", "latest", "max", "min")
WINDOWS = (1, 7, 30)

Event = tuple[datetime, float]


def _local(y: int, m: int, d: int, hh: int, mm: int, ss: int, fold: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=ROME, fold=fold).astimezone(UTC)


def _events() -> list[Event]:
    """Events from mid-February to mid-November 2026, denser around the DST changes, with
    events exactly at local midnights, one second before them, and in October's repeated
    hour (both of its instants)."""
    rng = random.Random(12)
    start = datetime(2026, 2, 10, tzinfo=UTC).timestamp()
    end = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
    events = [
        (datetime.fromtimestamp(rng.uniform(start, end), UTC), float(rng.randint(1, 9)))
        for _ in range(1500)
    ]
    for month, day in ((3, 29), (10, 25)):  # 200 events in the 3 days around each change
        lo = datetime(2026, month, day - 1, tzinfo=ROME).timestamp()
        events += [
            (datetime.fromtimestamp(rng.uniform(lo, lo + 3 * 86400), UTC), float(rng.randint(1, 9)))
            for _ in range(200)
        ]
    for d in (datetime(2026, 3, 28), datetime(2026, 3, 29), datetime(2026, 3, 30),
              datetime(2026, 10, 24), datetime(2026, 10, 25), datetime(2026, 10, 26),
              datetime(2026, 3, 1), datetime(2026, 9, 26)):  # fmt: skip
        events.append((_local(d.year, d.month, d.day, 0, 0, 0), 11.0))
        events.append((_local(d.year, d.month, d.day, 23, 59, 59), 12.0))
    events.append((_local(2026, 10, 25, 2, 30, 0, fold=0), 13.0))  # the repeated hour, twice
    events.append((_local(2026, 10, 25, 2, 30, 0, fold=1), 14.0))
    events.append((_local(2026, 3, 29, 1, 59, 59), 15.0))  # just before the jump
    events.append((_local(2026, 3, 29, 3, 0, 0), 16.0))  # just after it
    return events


EVENTS = _events()


def _day_rows(aggregate: str, events: list[Event]) -> list[DayRow]:
    """The per-day rows the worker stores (one SeriesDelta per 100 events, merged)."""
    rows: dict[date, DayRow] = {}
    for chunk in range(0, len(events), 100):
        delta = SeriesDelta(aggregate)
        for at, value in events[chunk : chunk + 100]:
            delta.add(at, local_day(at, TZ), value)
        for day in delta.days.keys() | delta.day_levels.keys():
            events_n, total = delta.days.get(day, [0, 0.0])
            level, level_at = delta.day_levels.get(day, (None, None))
            old = rows.get(day)
            if old is not None:
                events_n, total = old.events + events_n, old.total + total
                if old.level is not None and old.level_at is not None:
                    if level is None or level_at is None:
                        level, level_at = old.level, old.level_at
                    else:
                        from okrflow.domain.series import merge_level

                        level, level_at = merge_level(aggregate, old.level, old.level_at,
                                                      level, level_at)  # fmt: skip
            rows[day] = DayRow(day, int(events_n), float(total), level, level_at)
    return [rows[d] for d in sorted(rows)]


def _expected(aggregate: str, events: list[Event], at: datetime, n: int) -> float | None:
    """Independently: the events whose instant falls in [local midnight n-1 days before
    the local date at `at`, the local midnight after it), aggregated directly."""
    today = at.astimezone(ROME).date()
    lo = datetime.combine(today - timedelta(days=n - 1), time(0), tzinfo=ROME)
    hi = datetime.combine(today + timedelta(days=1), time(0), tzinfo=ROME)
    inside = [(t, v) for t, v in events if lo.astimezone(UTC) <= t < hi.astimezone(UTC)]
    values = [v for _, v in inside]
    if aggregate == "count":
        return float(len(inside))
    if aggregate == "sum":
        return float(sum(values))
    if aggregate == "count_distinct":
        return float(len({str(v) for v in values}))
    if not values:
        return None
    if aggregate == "max":
        return max(values)
    if aggregate == "min":
        return min(values)
    newest = max(t for t, _ in inside)
    return [v for t, v in inside if t == newest][-1]


def _instants() -> list[datetime]:
    out = []
    for first in (date(2026, 3, 26), date(2026, 10, 22)):
        for i in range(8):
            d = first + timedelta(days=i)
            out.append(_local(d.year, d.month, d.day, 23, 59, 59))
            out.append(_local(d.year, d.month, d.day, 0, 0, 0))
    return out


def _distinct(events: list[Event], today: date, n: int) -> int:
    seen = [(local_day(t, TZ), str(v)) for t, v in events]
    return distinct_by_window(seen, [today], n)[0]


@pytest.mark.parametrize("n", WINDOWS)
@pytest.mark.parametrize("aggregate", AGGREGATES)
def test_window_value_equals_direct_aggregation(aggregate: str, n: int) -> None:
    field = None if aggregate == "count" else ("data", "v")
    kpi = Kpi("k", "K", SimpleMetric("e", aggregate, field), n)  # type: ignore[arg-type]
    rows = _day_rows(aggregate, EVENTS)
    for at in _instants():
        today = local_day(at, TZ)
        distinct = {"value": _distinct(EVENTS, today, n)}
        got = kpi_progress(kpi, {"value": rows}, distinct, today, TZ)
        assert got.value == _expected(aggregate, EVENTS, at, n), (at.isoformat(), today)
        assert (got.first_day, got.last_day) == (today - timedelta(days=n - 1), today)


def test_the_window_moves_at_local_midnight_not_by_utc_days() -> None:
    """One second apart across a local midnight: different windows. 00:00:00 local on the
    day after the spring change is 22:00 UTC of the day before, still that day in UTC."""
    before = _local(2026, 3, 29, 23, 59, 59)
    after = _local(2026, 3, 30, 0, 0, 0)
    assert after - before == timedelta(seconds=1)
    assert after.date() == date(2026, 3, 29)  # UTC's day has not moved yet
    kpi = Kpi("k", "K", SimpleMetric("e", "count"), 1)
    rows = _day_rows("count", EVENTS)
    values = [kpi_progress(kpi, {"value": rows}, {}, local_day(t, TZ), TZ).value
              for t in (before, after)]  # fmt: skip
    assert values == [_expected("count", EVENTS, t, 1) for t in (before, after)]
    assert values[0] != values[1]


def test_dst_days_are_one_day_each() -> None:
    """The 23-hour and 25-hour days are one bucket each: a 1d window on them holds every
    event of that local date (the repeated October hour counted twice)."""
    for day, hours in ((date(2026, 3, 29), 23), (date(2026, 10, 25), 25)):
        lo = datetime.combine(day, time(0), tzinfo=ROME).astimezone(UTC)
        hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ROME).astimezone(UTC)
        assert hi - lo == timedelta(hours=hours)
        kpi = Kpi("k", "K", SimpleMetric("e", "count"), 1)
        got = kpi_progress(kpi, {"value": _day_rows("count", EVENTS)}, {}, day, TZ)
        assert got.value == sum(1 for t, _ in EVENTS if lo <= t < hi)
    assert window_of(date(2026, 3, 30), 7) == (date(2026, 3, 24), date(2026, 3, 30))


def test_ratio_band_and_no_value() -> None:
    """A ratio over the window: num / den; no value (and no health) while den is 0; the
    band is strict, like `maintain`."""
    num = [(t, v) for t, v in EVENTS if v >= 5]
    den = EVENTS
    kpi = Kpi(
        "r", "R", RatioMetric(SimpleMetric("a", "count"), SimpleMetric("b", "count")), 7,
        Maintain(above=0.5),
    )  # fmt: skip
    days = {"numerator": _day_rows("count", num), "denominator": _day_rows("count", den)}
    for at in _instants():
        today = local_day(at, TZ)
        got = kpi_progress(kpi, days, {}, today, TZ)
        n, d = _expected("count", num, at, 7), _expected("count", den, at, 7)
        assert n is not None and d is not None
        assert got.value == pytest.approx(n / d)
        assert got.healthy is (n / d > 0.5)
        assert got.band == "above 0.5"
    empty = kpi_progress(kpi, {"numerator": [], "denominator": []}, {}, date(2026, 1, 1), TZ)
    assert (empty.value, empty.has_value, empty.healthy) == (None, False, None)
    at_band = Kpi("b", "B", SimpleMetric("a", "count"), 1, Maintain(below=3))
    rows = [DayRow(date(2026, 1, 1), 3, 3.0)]
    assert kpi_progress(at_band, {"value": rows}, {}, date(2026, 1, 1), TZ).healthy is False
    assert kpi_progress(at_band, {"value": rows}, {}, date(2026, 1, 2), TZ).healthy is True


def test_distinct_by_window_slides_like_a_fresh_count() -> None:
    rng = random.Random(3)
    start = date(2026, 1, 1)
    seen = [(start + timedelta(days=rng.randint(0, 90)), str(rng.randint(0, 30)))
            for _ in range(600)]  # fmt: skip
    days = [start + timedelta(days=i) for i in range(-5, 100, 1)]
    for n in (1, 7, 30):
        expected = []
        for day in days:
            lo = day - timedelta(days=n - 1)
            expected.append(len({v for d, v in seen if lo <= d <= day}))
        assert distinct_by_window(seen, days, n) == expected
    gaps = [days[0], days[40], days[41], days[90]]  # not consecutive: reset and slide
    assert distinct_by_window(seen, gaps, 7) == [
        len({v for d, v in seen if g - timedelta(days=6) <= d <= g}) for g in gaps
    ]


# --- the parser ------------------------------------------------------------------------

HEAD = """shop: salone-bella
timezone: Europe/Rome
objectives:
  - key: o
    title: O
    owner: me
    period: {start: 2026-01-01, end: 2026-06-30}
    key_results:
      - {key: k, metric: {event: order.placed, aggregate: count}, target: 10}
kpis:
"""


def _problems(kpis: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(HEAD + kpis, "okrs.yaml")
    return [str(p) for p in info.value.problems]


def test_a_valid_kpis_section_builds_kpis() -> None:
    parsed = parse_plan(
        HEAD + "  - {key: orders, title: Orders a day, window: 7d, healthy: {above: 20},\n"
        "     metric: {event: order.placed, aggregate: count}}\n"
        "  - key: refunds\n"
        "    window: 366d\n"
        "    metric: {ratio: {numerator: {event: order.refunded, aggregate: count},\n"
        "                     denominator: {event: order.placed, aggregate: count}}}\n",
        "okrs.yaml",
    )
    orders, refunds = parsed.plan.kpis
    assert orders == Kpi("orders", "Orders a day", SimpleMetric("order.placed", "count"), 7,
                         Maintain(above=20))  # fmt: skip
    assert (refunds.title, refunds.window_days, refunds.healthy) == ("refunds", 366, None)
    assert isinstance(refunds.metric, RatioMetric)
    assert parse_plan(HEAD.removesuffix("kpis:\n"), "okrs.yaml").plan.kpis == ()


@pytest.mark.parametrize(
    ("kpis", "expected"),
    [
        (
            "  - {key: a, window: 7d, metric: {event: e, aggregate: count}}\n"
            "  - {key: a, window: 1d, metric: {event: e, aggregate: count}}\n",
            ["okrs.yaml:12: kpis[1].key: duplicate KPI key 'a' (first at kpis[0])"],
        ),
        (
            "  - {key: a, window: 0d, metric: {event: e, aggregate: count}}\n",
            [
                'okrs.yaml:11: kpis[0].window: must be a number of local days like "7d", '
                'from "1d" to "366d"'
            ],
        ),
        (
            "  - {key: a, window: 7 days, metric: {event: e, aggregate: count}}\n",
            [
                'okrs.yaml:11: kpis[0].window: must be a number of local days like "7d", '
                'from "1d" to "366d"'
            ],
        ),
        (
            "  - {key: a, window: 367d, metric: {event: e, aggregate: count}}\n",
            ["okrs.yaml:11: kpis[0].window: 367 days: a window holds 1d to 366d"],
        ),
        (
            "  - key: a\n    window: 7d\n    metric: {event: e, aggregate: count}\n"
            "    healthy: {above: 1, below: 3}\n",
            ["okrs.yaml:14: kpis[0].healthy: {'above': 1, 'below': 3} has too many properties"],
        ),
        (
            "  - key: a\n    window: 7d\n    metric: {event: e, aggregate: count}\n"
            "    healthy: {}\n",
            ["okrs.yaml:14: kpis[0].healthy: {} should be non-empty"],
        ),
        (
            "  - key: a\n    window: 7d\n    metric: {event: e, aggregate: count}\n"
            "    target: 10\n",
            [
                "okrs.yaml:11: kpis[0]: Additional properties are not allowed "
                "('target' was unexpected)"
            ],
        ),
        (
            "  - key: a\n    metric: {event: e, aggregate: count}\n",
            ["okrs.yaml:11: kpis[0]: 'window' is a required property"],
        ),
        (
            "  - key: a\n    window: 7d\n    metric: {event: e, aggregate: sum}\n",
            ["okrs.yaml:13: kpis[0].metric: aggregate sum needs a field (e.g. data.total)"],
        ),
        (
            "  - key: a\n    window: 7d\n    title: " + "t" * 201 + "\n"
            "    metric: {event: e, aggregate: count}\n",
            ["okrs.yaml:13: kpis[0].title: 201 characters: a title holds at most 200"],
        ),
        (
            "".join(
                f"  - {{key: k{i}, window: 7d, metric: {{event: e, aggregate: count}}}}\n"
                for i in range(51)
            ),
            ["okrs.yaml:61: kpis[50]: over the limit: a plan file holds at most 50 KPIs"],
        ),
    ],
)
def test_bad_kpis_are_refused_at_their_line(kpis: str, expected: list[str]) -> None:
    assert _problems(kpis) == expected


def test_vocabulary_warnings_cover_kpi_metrics() -> None:
    from okrflow.plans.vocabulary import plan_warnings

    parsed = parse_plan(
        HEAD + "  - key: refunds\n"
        "    window: 7d\n"
        "    metric: {ratio: {numerator: {event: order.refundd, aggregate: count},\n"
        "                     denominator: {event: order.placed, aggregate: count,\n"
        "                                   where: {data.totl: {gt: 5}}}}}\n",
        "okrs.yaml",
    )
    assert [str(w) for w in plan_warnings(parsed)] == [
        "okrs.yaml:13: kpis[0].metric.ratio.numerator.event: warning: event type "
        "'order.refundd' is not built in (checked offline); until such events arrive this KPI "
        "counts nothing; did you mean 'order.refunded'?",
        "okrs.yaml:15: kpis[0].metric.ratio.denominator.where.data.totl: warning: 'data.totl' "
        "is not defined for order.placed: only events that add it match; did you mean "
        "'data.total'?",
    ]
