"""series_deltas (the worker's hot loop, with its shortcuts) against a plain oracle: every
event matched with `MatchIndex.targets`, its values read one by one, added with
`SeriesDelta.add` on the day `local_day` gives. Random events over two shops and zones,
every aggregate, filters, periods, KPIs, bad values, and Europe/Rome's DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from okrflow.counting.decode import Delivered
from okrflow.counting.matching import MatchIndex, Target, is_number, path_value
from okrflow.counting.series import MAX_ABS_VALUE, distinct_text, series_deltas
from okrflow.domain.model import Filter, KeyResult, Kpi, Objective, Period, Plan, SimpleMetric
from okrflow.domain.periods import local_day
from okrflow.domain.plans import ActivePlan
from okrflow.domain.series import SeriesDelta, SeriesKey
from okrflow.events import CloudEvent

SHOPS = {"rome": "Europe/Rome", "kolkata": "Asia/Kolkata"}
FIELD = ("data", "v")
NESTED = ("data", "n", "v")
METRICS = [
    SimpleMetric("sale", "count"),
    SimpleMetric("sale", "sum", FIELD),
    SimpleMetric("sale", "sum", NESTED),
    SimpleMetric("sale", "count_distinct", FIELD),
    SimpleMetric("sale", "latest", FIELD),
    SimpleMetric("sale", "max", FIELD),
    SimpleMetric("sale", "min", FIELD),
    SimpleMetric("sale", "count", where=(Filter(("data", "kind"), "eq", "ad"),)),
    SimpleMetric("sale", "sum", FIELD, where=(Filter(FIELD, "gte", 10),)),
    SimpleMetric("visit", "count_distinct", ("data", "kind")),
    SimpleMetric("visit", "count", where=(Filter(("data", "kind"), "in", ("ad", "promo")),)),
]
PERIODS = [
    Period(date(2026, 3, 1), date(2026, 3, 31)),
    Period(date(2026, 3, 29), date(2026, 11, 1)),
]


def _plans() -> list[ActivePlan]:
    plans = []
    next_id = 1
    for shop, tz in SHOPS.items():
        ids: dict[tuple[str, str], int] = {}
        objectives = []
        for p, period in enumerate(PERIODS):
            krs = tuple(
                KeyResult(f"k{i}", "t", metric, target=1) for i, metric in enumerate(METRICS)
            )
            objectives.append(Objective(f"o{p}", "o", "team", "team", period, krs))
            for kr in krs:
                ids[f"o{p}", kr.key] = next_id
                next_id += 1
        kpis = tuple(Kpi(f"kpi{i}", "t", m, 7) for i, m in enumerate(METRICS[:4]))
        kpi_ids = {}
        for kpi in kpis:
            kpi_ids[kpi.key] = next_id
            next_id += 1
        plans.append(ActivePlan(Plan(shop, tz, tuple(objectives), kpis), ids, kpi_ids))
    return plans


PLANS = _plans()
INDEX = MatchIndex(PLANS)
values = st.one_of(
    st.integers(-5, 30),
    st.floats(-5, 30, allow_nan=False),
    st.sampled_from([True, False, None, "x", "ad", 'q"t', "é", 2**53, 2**53 + 2, 1e300, -1e300]),
    st.just(float("nan")),
)
START = datetime(2026, 2, 27, tzinfo=UTC)


@st.composite
def events(draw: st.DrawFn) -> list[Delivered]:
    out = []
    for i in range(draw(st.integers(0, 60))):
        data: dict[str, Any] = {}
        if draw(st.booleans()):
            data["v"] = draw(values)
        if draw(st.booleans()):
            data["kind"] = draw(st.sampled_from(["ad", "promo", "email", 3]))
        if draw(st.booleans()):
            data["n"] = {"v": draw(values)} if draw(st.booleans()) else draw(values)
        # Mostly around Rome's March change and the periods' edges.
        minutes = draw(st.one_of(st.integers(0, 60 * 24 * 5), st.integers(0, 60 * 24 * 250)))
        offset = draw(st.sampled_from([0, 60, 330, -300]))
        at = (START + timedelta(minutes=minutes)).astimezone(timezone(timedelta(minutes=offset)))
        event = CloudEvent(
            specversion="1.0", id=f"e{i}", source="/s",
            type=draw(st.sampled_from(["sale", "visit", "other"])), time=at,
            shop=draw(st.sampled_from([*SHOPS, "nobody"])), data=data,
        )  # fmt: skip
        out.append(Delivered(0, i, event))
    return out


def _value(target: Target, event: CloudEvent) -> float | str | None:
    """The oracle's value: None to skip this target; raises ValueError to reject the event."""
    metric = target.metric
    if metric.aggregate == "count":
        return 1.0
    assert metric.field is not None
    value = path_value(event, metric.field)
    if metric.aggregate == "count_distinct":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return None
        return distinct_text(value)
    if not is_number(value):
        return None
    if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
        raise ValueError("out of range")
    return float(value)


def _oracle(delivered: list[Delivered]) -> tuple[dict[SeriesKey, SeriesDelta], int, list[int]]:
    deltas: dict[int, tuple[Target, SeriesDelta]] = {}
    unmatched, rejected = 0, []
    for d in delivered:
        event = d.event
        targets = INDEX.targets(event)
        try:
            pairs = [(t, _value(t, event)) for t in targets]
        except ValueError:
            rejected.append(d.offset)
            continue
        pairs = [(t, v) for t, v in pairs if v is not None]
        if not pairs:
            unmatched += 1
        for target, value in pairs:
            if id(target) not in deltas:
                delta = SeriesDelta(target.metric.aggregate)
                if target.rolling and target.metric.aggregate == "count_distinct":
                    delta.value_days = set()
                deltas[id(target)] = (target, delta)
            deltas[id(target)][1].add(event.time, local_day(event.time, target.timezone), value)
    by_series = {key: delta for target, delta in deltas.values() for key in target.series}
    return by_series, unmatched, rejected


def _shape(delta: SeriesDelta) -> dict[str, Any]:
    return {
        "aggregate": delta.aggregate,
        "events": delta.events,
        "days": {day: [n, float(total)] for day, (n, total) in delta.days.items()},
        "distinct": delta.distinct,
        "day_levels": delta.day_levels,
        "day_last_event_at": delta.day_last_event_at,
        "value_days": delta.value_days,
    }


@settings(max_examples=300, deadline=None)
@given(events())
def test_series_deltas_equal_the_plain_oracle(delivered: list[Delivered]) -> None:
    counted = series_deltas(delivered, INDEX)
    expected, unmatched, rejected = _oracle(delivered)
    assert [d.offset for d, _ in counted.rejected] == rejected
    assert {d.offset for d, _ in counted.rejected}.isdisjoint(d.offset for d in counted.accepted)
    assert [d.offset for d in counted.accepted] == [
        d.offset for d in delivered if d.offset not in set(rejected)
    ]
    assert counted.unmatched == unmatched
    assert {k: _shape(v) for k, v in counted.deltas.items()} == {
        k: _shape(v) for k, v in expected.items()
    }
