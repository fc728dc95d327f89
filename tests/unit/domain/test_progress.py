"""docs/formulas.md formulas at fixed instants, and their properties (hypothesis)."""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okrflow.domain.model import (
    Cadence,
    KeyResult,
    Maintain,
    Objective,
    Period,
    Plan,
    RatioMetric,
    SimpleMetric,
    Thresholds,
)
from okrflow.domain.pace import PaceRule, key_result_pace, status_at
from okrflow.domain.periods import cadence_slots, local_midnight, period_bounds
from okrflow.domain.progress import (
    SeriesState,
    key_result_progress,
    measure_plan,
    objective_progress,
    plan_progress,
)

TZ = "Europe/Rome"
H1 = Period(date(2026, 1, 1), date(2026, 6, 30))
COUNT = SimpleMetric("customer.created", "count")
LATEST = SimpleMetric("social.followers.changed", "latest", ("data", "followers"))


def at(day: date, hour: int = 0) -> datetime:
    return local_midnight(day, TZ) + timedelta(hours=hour)


def counted(n: float) -> dict[str, SeriesState]:
    return {"value": SeriesState(events=int(n), total=n)}


def test_additive_value_is_baseline_plus_aggregate_and_relative_target() -> None:
    kr = KeyResult("new-clients", "t", COUNT, baseline=200, target=230)
    p = key_result_progress(kr, H1, TZ, counted(15), at(date(2026, 4, 1)))
    assert p.value == 215
    assert p.progress == pytest.approx(0.5)


def test_expected_is_linear_from_first_local_midnight_to_the_day_after_the_last() -> None:
    kr = KeyResult("k", "t", COUNT, target=10)
    start, end = period_bounds(H1, TZ)
    assert start == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)  # CET is UTC+1
    assert end == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # CEST is UTC+2
    mid = start + (end - start) / 2
    assert key_result_progress(kr, H1, TZ, {}, mid).expected == pytest.approx(0.5)
    assert key_result_progress(kr, H1, TZ, {}, start - timedelta(days=3)).expected == 0
    assert key_result_progress(kr, H1, TZ, {}, end + timedelta(days=3)).expected == 1


@pytest.mark.parametrize(
    ("now", "progress", "expected_status"),
    [
        (at(date(2025, 12, 31), 23), 0.0, "not_started"),
        (at(date(2026, 3, 1)), 1.0, "achieved"),
        (at(date(2026, 7, 1)), 1.2, "achieved"),
        (at(date(2026, 7, 1)), 0.99, "missed"),
    ],
)
def test_status_order(now: datetime, progress: float, expected_status: str) -> None:
    start, end = period_bounds(H1, TZ)
    assert (
        status_at(now.timestamp(), start.timestamp(), end.timestamp(), progress, 0.5, Thresholds())
        == expected_status
    )


@pytest.mark.parametrize(
    ("progress", "status"),
    [
        (0.40, "on_track"),
        (0.39, "at_risk"),
        (0.25, "at_risk"),
        (0.24, "off_track"),
        (-3.0, "off_track"),
    ],
)
def test_gap_thresholds(progress: float, status: str) -> None:
    start, end = period_bounds(H1, TZ)
    mid = start + (end - start) / 2
    assert (
        status_at(
            mid.timestamp(),
            start.timestamp(),
            end.timestamp(),
            progress,
            0.5,
            Thresholds(0.10, 0.25),
        )
        == status
    )


def test_level_aggregate_without_events_is_the_baseline() -> None:
    kr = KeyResult("followers", "t", LATEST, baseline=120, target=170)
    p = key_result_progress(kr, H1, TZ, {}, at(date(2026, 2, 1)))
    assert (p.value, p.progress, p.has_value) == (120, 0, False)
    p = key_result_progress(
        kr, H1, TZ, {"value": SeriesState(events=3, level=145)}, at(date(2026, 2, 1))
    )
    assert (p.value, p.progress, p.has_value) == (145, 0.5, True)


def test_decrease_target_below_baseline_and_wrong_way_is_negative() -> None:
    kr = KeyResult("churn", "t", LATEST, baseline=40, target=20)
    now = at(date(2026, 2, 1))
    assert key_result_progress(kr, H1, TZ, {"value": SeriesState(1, level=30)}, now).progress == 0.5
    assert (
        key_result_progress(kr, H1, TZ, {"value": SeriesState(1, level=50)}, now).progress == -0.5
    )


def test_ratio_maintain_holds_without_denominator_and_breaks_above_bound() -> None:
    ratio = RatioMetric(
        SimpleMetric("order.refunded", "count"), SimpleMetric("order.placed", "count")
    )
    kr = KeyResult("refunds", "t", ratio, maintain=Maintain(below=0.05))
    during, after = at(date(2026, 3, 1)), at(date(2026, 7, 2))
    empty = key_result_progress(kr, H1, TZ, {}, during)
    assert (empty.progress, empty.status, empty.has_value) == (1, "on_track", False)
    ok = {"numerator": SeriesState(1, total=1), "denominator": SeriesState(40, total=40)}
    bad = {"numerator": SeriesState(3, total=3), "denominator": SeriesState(40, total=40)}
    assert key_result_progress(kr, H1, TZ, ok, during).value == 0.025
    assert key_result_progress(kr, H1, TZ, ok, during).status == "on_track"
    assert key_result_progress(kr, H1, TZ, bad, during).status == "off_track"
    assert key_result_progress(kr, H1, TZ, bad, during).progress == 0
    assert key_result_progress(kr, H1, TZ, ok, after).status == "achieved"
    assert key_result_progress(kr, H1, TZ, bad, after).status == "missed"
    assert key_result_progress(kr, H1, TZ, ok, at(date(2025, 12, 1))).status == "not_started"


def test_maintain_above() -> None:
    kr = KeyResult("rating", "t", LATEST, baseline=4.0, maintain=Maintain(above=4.5))
    now = at(date(2026, 3, 1))
    assert (
        key_result_progress(kr, H1, TZ, {"value": SeriesState(1, level=4.7)}, now).status
        == "on_track"
    )
    assert key_result_progress(kr, H1, TZ, {}, now).status == "off_track"  # V = baseline 4.0


# --- cadence ---------------------------------------------------------------------------------

JAN = Period(date(2026, 1, 1), date(2026, 1, 31))
WEEKDAYS = Cadence("day", 3, frozenset(range(5)))


def test_weekday_slots_skip_weekends() -> None:
    slots = cadence_slots(JAN, WEEKDAYS, TZ)
    assert len(slots) == 22  # January 2026 has 22 weekdays
    assert all(s.days[0].weekday() < 5 for s in slots)


def test_cadence_progress_caps_each_slot_at_n() -> None:
    kr = KeyResult("posts", "t", COUNT, cadence=WEEKDAYS)
    counts = {date(2026, 1, 5): 5, date(2026, 1, 6): 2, date(2026, 1, 10): 9}  # Mon, Tue, Sat
    p = key_result_progress(
        kr, JAN, TZ, {"value": SeriesState(16, 16, day_counts=counts)}, at(date(2026, 1, 7))
    )
    assert p.value == 5  # min(5,3) + min(2,3); Saturday is no slot
    assert p.target == 66
    assert p.progress == pytest.approx(5 / 66)
    # 1 Jan (Thu), 2 Jan (Fri), 5 Jan, 6 Jan are over at 7 Jan 00:00: 4 of 22 slots
    assert p.expected == pytest.approx(4 / 22)


def test_cadence_expected_counts_the_current_slot_by_its_elapsed_fraction() -> None:
    kr = KeyResult("posts", "t", COUNT, cadence=WEEKDAYS)
    p = key_result_progress(kr, JAN, TZ, {}, at(date(2026, 1, 7), 12))
    assert p.expected == pytest.approx(4.5 / 22)
    # Saturday noon: no slot runs, elapsed stays at the 7 weekdays so far
    p = key_result_progress(kr, JAN, TZ, {}, at(date(2026, 1, 10), 12))
    assert p.expected == pytest.approx(7 / 22)


def test_week_and_month_slots_are_clipped_to_the_period() -> None:
    period = Period(date(2026, 1, 1), date(2026, 3, 10))
    weeks = cadence_slots(period, Cadence("week", 2), TZ)
    assert weeks[0].days[0] == date(2026, 1, 1) and weeks[0].days[-1] == date(
        2026, 1, 4
    )  # Thu..Sun
    assert weeks[-1].days == (date(2026, 3, 9), date(2026, 3, 10))
    months = cadence_slots(period, Cadence("month", 4), TZ)
    assert [len(m.days) for m in months] == [31, 28, 10]


def test_day_slot_across_dst_change_lasts_23_hours() -> None:
    # Europe/Rome springs forward on Sunday 29 March 2026.
    period = Period(date(2026, 3, 28), date(2026, 3, 30))
    slots = cadence_slots(period, Cadence("day", 1), TZ)
    assert [s.end - s.start for s in slots] == [
        timedelta(hours=24),
        timedelta(hours=23),
        timedelta(hours=24),
    ]
    kr = KeyResult("posts", "t", COUNT, cadence=Cadence("day", 1))
    # 29 March 11:30 local is 10:30 after local midnight (UTC+1 until 02:00, then UTC+2): 10.5/23
    now = datetime(2026, 3, 29, 9, 30, tzinfo=UTC)
    p = key_result_progress(kr, period, TZ, {}, now)
    assert p.expected == pytest.approx((1 + 10.5 / 23) / 3)


# --- objectives -------------------------------------------------------------------------------


def _objective(
    key: str, krs: tuple[KeyResult, ...], parent: str | None = None, weight: float = 1
) -> Objective:
    return Objective(key, key, "team", "team", H1, krs, parent=parent, weight=weight)


def test_objective_progress_is_the_weighted_mean_of_clamped_key_results() -> None:
    a = KeyResult("a", "t", COUNT, target=10, weight=2)
    b = KeyResult("b", "t", COUNT, target=10)
    o = _objective("o", (a, b))
    p = objective_progress(o, TZ, {"a": counted(20), "b": counted(4)}, at(date(2026, 4, 1)))
    assert p.progress == pytest.approx((2 * 1 + 1 * 0.4) / 3)  # a's 2.0 is clamped to 1


def test_children_roll_up_with_their_weight() -> None:
    parent = _objective("company", (KeyResult("a", "t", COUNT, target=10),))
    child = _objective("team", (KeyResult("b", "t", COUNT, target=10),), parent="company", weight=3)
    grandchild = _objective("me", (KeyResult("c", "t", COUNT, target=10),), parent="team")
    plan = Plan("s", TZ, (parent, child, grandchild))
    states = {("company", "a"): counted(10), ("team", "b"): counted(0), ("me", "c"): counted(5)}
    result = plan_progress(plan, states, at(date(2026, 3, 1)))
    assert result["me"].progress == pytest.approx(0.5)
    assert result["team"].progress == pytest.approx((0 + 0.5) / 2)
    assert result["company"].progress == pytest.approx((1 * 1 + 3 * 0.25) / 4)


def test_measuring_a_plan_leaves_no_reference_cycles() -> None:
    # The exporter measures every plan at every refresh: cyclic garbage there made the
    # collector pause scrapes for 30-50 ms.
    parent = _objective("company", (KeyResult("a", "t", COUNT, target=10),))
    child = _objective("team", (KeyResult("b", "t", COUNT, target=10),), parent="company")
    plan = Plan("s", TZ, (parent, child))
    states = {("company", "a"): counted(10), ("team", "b"): counted(3)}
    gc.collect()
    gc.disable()
    try:
        measures = measure_plan(plan, states)
        assert measures["company"].progress == pytest.approx((1 + 0.3) / 2)
        del measures
        assert gc.collect() == 0
    finally:
        gc.enable()


# --- properties -------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2025, 10, 1), max_value=datetime(2026, 9, 1), timezones=st.just(UTC)
)
values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    now=instants, n=st.integers(0, 10_000), baseline=st.floats(0, 1000), delta=st.floats(1, 1000)
)
def test_progress_grows_with_value_and_expected_is_bounded(
    now: datetime, n: int, baseline: float, delta: float
) -> None:
    kr = KeyResult("k", "t", COUNT, baseline=baseline, target=baseline + delta)
    lower = key_result_progress(kr, H1, TZ, counted(n), now)
    higher = key_result_progress(kr, H1, TZ, counted(n + 1), now)
    assert higher.progress > lower.progress
    assert 0 <= lower.expected <= 1


@given(a=instants, b=instants)
def test_expected_never_decreases_with_time(a: datetime, b: datetime) -> None:
    early, late = sorted((a, b))
    kr = KeyResult("k", "t", COUNT, target=10)
    assert (
        key_result_progress(kr, H1, TZ, {}, early).expected
        <= key_result_progress(kr, H1, TZ, {}, late).expected
    )
    cad = KeyResult("c", "t", COUNT, cadence=WEEKDAYS)
    assert (
        key_result_progress(cad, JAN, TZ, {}, early).expected
        <= key_result_progress(cad, JAN, TZ, {}, late).expected
    )


@given(baseline=values, delta=st.floats(0.001, 1e5), moved=values, now=instants)
def test_decrease_is_symmetric_to_increase(
    baseline: float, delta: float, moved: float, now: datetime
) -> None:
    up = KeyResult("up", "t", LATEST, baseline=baseline, target=baseline + delta)
    down = KeyResult("down", "t", LATEST, baseline=baseline, target=baseline - delta)
    p_up = key_result_progress(up, H1, TZ, {"value": SeriesState(1, level=baseline + moved)}, now)
    p_down = key_result_progress(
        down, H1, TZ, {"value": SeriesState(1, level=baseline - moved)}, now
    )
    assert p_up.progress == pytest.approx(p_down.progress)
    assert p_up.status == p_down.status


@given(
    counts=st.dictionaries(st.dates(date(2025, 12, 25), date(2026, 2, 5)), st.integers(0, 10)),
    now=instants,
)
def test_cadence_progress_is_within_bounds(counts: dict[date, int], now: datetime) -> None:
    kr = KeyResult("c", "t", COUNT, cadence=WEEKDAYS)
    p = key_result_progress(
        kr, JAN, TZ, {"value": SeriesState(sum(counts.values()), day_counts=counts)}, now
    )
    assert 0 <= p.progress <= 1
    assert 0 <= p.expected <= 1


def pace_rule(which: str) -> PaceRule:
    """January's pace rule of a linear, a cadence or a maintain key result."""
    kr = {
        "linear": KeyResult("k", "t", COUNT, target=10),
        "cadence": KeyResult("c", "t", COUNT, cadence=WEEKDAYS),
        "maintain": KeyResult("m", "t", COUNT, maintain=Maintain(below=5)),
    }[which]
    return key_result_pace(kr, JAN, TZ)


@given(
    progresses=st.lists(st.floats(-2, 3, allow_nan=False), max_size=20),
    now=instants,
    which=st.sampled_from(["linear", "cadence", "maintain"]),
)
def test_a_pace_rule_judges_by_the_status_rule(
    progresses: list[float], now: datetime, which: str
) -> None:
    rule = pace_rule(which)
    ts = now.timestamp()
    for p in progresses:
        expected, status = rule.judge(p, ts)
        assert expected == rule.expected(ts)
        if which != "maintain":
            assert status == status_at(ts, rule.start, rule.end, p, expected, rule.thresholds)
        elif ts < rule.start:
            assert status == "not_started"
        elif ts >= rule.end:
            assert status == ("achieved" if p >= 1 else "missed")
        else:
            assert status == ("on_track" if p >= 1 else "off_track")


@given(
    progresses=st.lists(
        st.floats(-2, 3, allow_nan=False) | st.sampled_from([0.0, 1.0]), max_size=40
    ),
    now=instants,
    which=st.sampled_from(["linear", "cadence", "maintain"]),
)
def test_judging_ascending_progress_as_runs_equals_judging_each(
    progresses: list[float], now: datetime, which: str
) -> None:
    rule = pace_rule(which)
    ascending = sorted(progresses)
    ts = now.timestamp()
    expected, runs = rule.judge_ascending(ascending, ts)
    expanded = [status for status, first, after in runs for _ in range(first, after)]
    assert [(expected, status) for status in expanded] == [rule.judge(p, ts) for p in ascending]
    assert all(first < after for _, first, after in runs)
    assert len({status for status, _, _ in runs}) == len(runs)  # one run per status
