"""Baselines measured from data (`baseline: {from: history | previous_period}`): parsing and
building, the series and windows counted, matching, the fold of B against a computation
from the events, and the progress formulas of docs/formulas.md."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from okrflow.counting.matching import MatchIndex
from okrflow.domain.baselines import (
    baseline_window,
    counted_series,
    fold_baseline,
    stored_parts,
)
from okrflow.domain.history import DayRow, SeriesRows
from okrflow.domain.model import KeyResult, Objective, Period, Plan, RatioMetric, SimpleMetric
from okrflow.domain.periods import local_day, local_midnight, period_bounds
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import SeriesState, measure_key_result, measure_objective
from okrflow.events import CloudEvent, decode_event
from okrflow.plans.build import build_key_result
from okrflow.plans.diff import counting_fingerprint
from okrflow.plans.parse import PlanError, parse_plan
from tests.factories import encoded

TZ = "Europe/Rome"
PERIOD = Period(date(2026, 3, 20), date(2026, 3, 29))  # 10 days, DST change on the 29th
S, E = (t.timestamp() for t in period_bounds(PERIOD, TZ))
COUNT = {"event": "order.placed", "aggregate": "count"}


def _plan(kr: str) -> str:
    return f"""\
shop: s
timezone: {TZ}
objectives:
  - key: o
    title: O
    owner: me
    period: {{start: {PERIOD.start}, end: {PERIOD.end}}}
    key_results:
      - {kr}
"""


def test_a_measured_baseline_parses_and_waits_until_frozen() -> None:
    plan = parse_plan(
        _plan('{key: k, metric: {event: order.placed, aggregate: count}, '
              'baseline: {from: history}, target: "+15%"}'), "okrs.yaml",
    ).plan  # fmt: skip
    kr = plan.objectives[0].key_results[0]
    assert (kr.baseline_from, kr.baseline_waiting, kr.target) == ("history", True, None)
    frozen = build_key_result(
        {"key": "k", "metric": COUNT, "baseline": {"from": "history"}, "target": "+15%"},
        measured=200.0,
    )  # fmt: skip
    assert (frozen.baseline, frozen.target, frozen.baseline_waiting) == (200.0, 230.0, False)
    absolute = build_key_result(
        {"key": "k", "metric": COUNT, "baseline": {"from": "previous_period"}, "target": 50}
    )
    assert (absolute.target, absolute.baseline_waiting) == (50.0, True)


@pytest.mark.parametrize(
    ("kr", "problem"),
    [
        (
            "{key: k, metric: {event: order.placed, aggregate: count}, "
            "baseline: {from: history}, cadence: {every: day, at_least: 1}}",
            "objectives[0].key_results[0].baseline: a cadence key result has no baseline to "
            "measure",
        ),
        (
            "{key: k, metric: {event: order.placed, aggregate: count}, "
            'baseline: {from: last_year}, target: "+15%"}',
            "objectives[0].key_results[0].baseline",
        ),
    ],
)
def test_a_bad_measured_baseline_is_refused(kr: str, problem: str) -> None:
    with pytest.raises(PlanError) as info:
        parse_plan(_plan(kr), "okrs.yaml")
    assert any(problem in str(p) for p in info.value.problems), info.value.problems


def test_from_is_part_of_the_counting_a_number_is_not() -> None:
    plain = {"key": "k", "metric": COUNT, "baseline": 3, "target": 10}
    assert counting_fingerprint(plain, TZ) == counting_fingerprint({**plain, "baseline": 7}, TZ)
    history = {**plain, "baseline": {"from": "history"}}
    previous = {**plain, "baseline": {"from": "previous_period"}}
    assert len({counting_fingerprint(d, TZ) for d in (plain, history, previous)}) == 3


def _kr(metric: Any, source: str | None, measured: float | None = None) -> KeyResult:
    d: dict[str, Any] = {"key": "k", "metric": metric, "target": "+15%"}
    if source is not None:
        d["baseline"] = {"from": source}
    return build_key_result(d, measured)


LATEST = {"event": "order.placed", "aggregate": "latest", "field": "data.total"}
RATIO = {"ratio": {"numerator": {"event": "order.refunded", "aggregate": "count"},
                   "denominator": COUNT}}  # fmt: skip


def test_the_windows_counted() -> None:
    before = local_midnight(PERIOD.start - timedelta(days=10), TZ).timestamp()
    windows = {
        name: [(c.part, c.start, c.end) for c in counted_series(kr, PERIOD, TZ)]
        for name, kr in {
            "plain": _kr(COUNT, None),
            "history count": _kr(COUNT, "history"),
            "history count, frozen": _kr(COUNT, "history", 10),
            "history latest": _kr(LATEST, "history"),
            "previous count": _kr(COUNT, "previous_period"),
            "previous ratio": _kr(RATIO, "previous_period"),
            "previous ratio, frozen": _kr(RATIO, "previous_period", 0.1),
        }.items()
    }
    assert windows == {
        "plain": [("value", S, E)],
        "history count": [("value", -math.inf, E)],
        "history count, frozen": [("value", S, E)],
        "history latest": [("value", S, E), ("b.value", -math.inf, S)],
        "previous count": [("value", S, E), ("b.value", before, S)],
        "previous ratio": [("numerator", S, E), ("denominator", S, E),
                           ("b.numerator", before, S), ("b.denominator", before, S)],
        "previous ratio, frozen": [("numerator", S, E), ("denominator", S, E)],
    }  # fmt: skip
    assert stored_parts(_kr(COUNT, "history")) == ("value",)
    assert stored_parts(_kr(RATIO, "previous_period")) == (
        "numerator", "denominator", "b.numerator", "b.denominator",
    )  # fmt: skip
    # Ten local days before the 20th of March: from the 10th, at local midnight.
    assert baseline_window(_kr(COUNT, "previous_period"), PERIOD, TZ) == (before, S)
    assert datetime.fromtimestamp(before, UTC) == datetime(2026, 3, 9, 23, tzinfo=UTC)


def _event(at: datetime) -> CloudEvent:
    e = decode_event(encoded(event_type="order.placed", time=at.isoformat(), shop="s"))
    assert isinstance(e, CloudEvent)
    return e


def test_matching_by_window_keeps_different_windows_apart() -> None:
    krs = {
        "plain": _kr(COUNT, None),
        "history": _kr(COUNT, "history"),
        "previous": _kr(COUNT, "previous_period"),
        "frozen": _kr(COUNT, "history", 4),
    }
    ids = {key: i for i, key in enumerate(krs, start=1)}
    objective = Objective(
        "o", "O", "me", "company", PERIOD,
        tuple(KeyResult(**{**kr.__dict__, "key": key}) for key, kr in krs.items()),
    )  # fmt: skip
    index = MatchIndex(
        [ActivePlan(Plan("s", TZ, (objective,)), {("o", k): i for k, i in ids.items()})]
    )
    by_id = {v: k for k, v in ids.items()}

    def matched(at: datetime) -> set[tuple[str, str]]:
        return {(by_id[kr_id], part) for t in index.targets(_event(at)) for kr_id, part in t.series}

    start = datetime.fromtimestamp(S, UTC)
    assert matched(start) == {("plain", "value"), ("history", "value"), ("previous", "value"),
                              ("frozen", "value")}  # fmt: skip
    assert matched(start - timedelta(seconds=1)) == {("history", "value"), ("previous", "b.value")}
    assert matched(start - timedelta(days=9, hours=23)) == {("history", "value"),
                                                            ("previous", "b.value")}  # fmt: skip
    assert matched(start - timedelta(days=10, seconds=1)) == {("history", "value")}
    # Same metric, different windows, different targets: [S, E) is shared, (-inf, E) not.
    shared = sorted(sorted(by_id[i] for i, _ in t.series) for t in index.targets(_event(start)))
    assert shared == [["frozen", "plain", "previous"], ["history"]]


def _days(aggregate: str, events: list[tuple[datetime, float, str]]) -> list[DayRow]:
    """The per-day buckets the store keeps, built here from the events (docs 2.1)."""
    by_day: dict[date, list[tuple[datetime, float, str]]] = {}
    for e in events:
        by_day.setdefault(local_day(e[0], TZ), []).append(e)
    first_day: dict[str, date] = {}
    for at, _, value in events:
        first_day[value] = min(first_day.get(value, local_day(at, TZ)), local_day(at, TZ))
    rows = []
    for day in sorted(by_day):
        es = by_day[day]
        level = level_at = None
        if aggregate in ("latest", "max", "min"):
            pick = {"latest": max(es, key=lambda e: e[0]), "max": max(es, key=lambda e: e[1]),
                    "min": min(es, key=lambda e: e[1])}[aggregate]  # fmt: skip
            level, level_at = pick[1], pick[0]
        if aggregate == "count_distinct":
            new = sum(1 for v, d in first_day.items() if d == day)
            rows.append(DayRow(day, new, float(new), None, None, max(e[0] for e in es)))
            continue
        total = float(len(es)) if aggregate == "count" else sum(e[1] for e in es)
        rows.append(DayRow(day, len(es), total, level, level_at, max(e[0] for e in es)))
    return rows


def _direct(aggregate: str, events: list[tuple[datetime, float, str]]) -> float | None:
    if aggregate == "count":
        return float(len(events))
    if aggregate == "sum":
        return float(sum(e[1] for e in events))
    if aggregate == "count_distinct":
        return float(len({e[2] for e in events}))
    if not events:
        return None
    if aggregate == "latest":
        return max(events, key=lambda e: e[0])[1]
    values = [e[1] for e in events]
    return max(values) if aggregate == "max" else min(values)


@pytest.mark.parametrize("aggregate", ["count", "sum", "count_distinct", "latest", "max", "min"])
@pytest.mark.parametrize("source", ["history", "previous_period"])
def test_the_folded_baseline_equals_the_events_of_its_window(aggregate: str, source: str) -> None:
    field = {} if aggregate == "count" else {"field": "data.total"}
    kr = _kr({"event": "order.placed", "aggregate": aggregate, **field}, source)
    windows = {c.part: (c.start, c.end) for c in counted_series(kr, PERIOD, TZ)}
    lo, hi = baseline_window(kr, PERIOD, TZ)
    rng = random.Random(f"{aggregate}-{source}")
    for _ in range(25):
        first = datetime.fromtimestamp(S, UTC) - timedelta(days=40)
        events = [
            (first + timedelta(seconds=rng.randrange(60 * 86400)),
             float(rng.choice([1, 2.5, 7, 40, -3])), f"c{rng.randrange(15)}")
            for _ in range(rng.randrange(0, 60))
        ]  # fmt: skip
        # Each series holds the events of its window, as the live worker and backfill count.
        rows = {
            part: SeriesRows(_days(aggregate, [e for e in events if a <= e[0].timestamp() < b]))
            for part, (a, b) in windows.items()
        }
        want = _direct(aggregate, [e for e in events if lo <= e[0].timestamp() < hi])
        assert fold_baseline(kr, PERIOD, TZ, rows) == want


def _state(total: float) -> dict[str, SeriesState]:
    return {"value": SeriesState(events=int(total), total=total)}


def test_progress_of_measured_baselines() -> None:
    history = measure_key_result(_kr(COUNT, "history", 200), PERIOD, TZ, _state(215))
    assert (history.value, history.baseline, history.target) == (215, 200, 230)
    assert history.progress == pytest.approx(0.5)  # (V - B) / (T - B), V with the history
    previous = measure_key_result(_kr(COUNT, "previous_period", 200), PERIOD, TZ, _state(115))
    assert (previous.value, previous.target) == (115, 230)
    assert previous.progress == pytest.approx(0.5)  # period totals compared: V / T
    level = measure_key_result(_kr(LATEST, "previous_period", 40), PERIOD, TZ, {})
    assert (level.value, level.has_value, level.progress) == (40, False, 0)  # B while no value
    zero = measure_key_result(_kr(COUNT, "history", 0), PERIOD, TZ, _state(0))
    assert (zero.target, zero.progress) == (0, 1.0)  # "+15%" of 0: reached at once


def test_a_waiting_key_result_has_no_figures_and_is_left_out_of_the_roll_up() -> None:
    waiting = KeyResult(**{**_kr(COUNT, "history").__dict__, "key": "w", "weight": 5})
    plain = KeyResult("p", "P", SimpleMetric("order.placed", "count"), target=10)
    measure = measure_key_result(waiting, PERIOD, TZ, _state(300))
    assert measure.waiting and measure.value == 300
    assert all(math.isnan(x) for x in (measure.baseline, measure.target, measure.progress))
    objective = Objective("o", "O", "me", "company", PERIOD, (waiting, plain))
    rolled = measure_objective(objective, TZ, {"w": _state(300), "p": _state(4)})
    assert rolled.progress == pytest.approx(0.4)
    assert isinstance(_kr(RATIO, "history").metric, RatioMetric)


def test_the_last_event_is_not_one_of_the_baseline_window() -> None:
    before = datetime(2026, 3, 12, tzinfo=UTC)
    state = {
        "value": SeriesState(),
        "b.value": SeriesState(events=1, total=1, last_event_at=before),
    }
    kr = _kr(COUNT, "previous_period")
    assert measure_key_result(kr, PERIOD, TZ, state).last_event_at is None
    during = datetime(2026, 3, 21, tzinfo=UTC)
    state["value"] = SeriesState(events=1, total=1, last_event_at=during)
    assert measure_key_result(kr, PERIOD, TZ, state).last_event_at == during
