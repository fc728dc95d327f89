"""The forecast's pure functions (docs/formulas.md, "Forecast"): what gets no forecast and
why, what is certain, how the answer moves with the target, cadence slots, and (seeded, by
simulation) that it scores better than the linear projection in every family."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from okrflow.domain.forecast import (
    MIN_BASIS_DAYS,
    KeyResultForecast,
    NoForecast,
    forecast_key_result,
)
from okrflow.domain.forecast_cadence import forecast_cadence
from okrflow.domain.model import (
    Cadence,
    KeyResult,
    Maintain,
    Period,
    RatioMetric,
    SimpleMetric,
)
from tests.unit.domain import forecast_sim

COUNT = SimpleMetric(event="order.created", aggregate="count")
PERIOD = Period(date(2026, 1, 5), date(2026, 3, 29))  # Monday to Sunday, 12 weeks
TZ = "Europe/Madrid"


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def steady(per_day: float, days: int, start: date = PERIOD.start) -> dict[date, float]:
    return {start + timedelta(days=i): per_day for i in range(days)}


def kr(target: float | None = 500.0, **kw: object) -> KeyResult:
    return KeyResult(key="orders", title="Orders", metric=kw.pop("metric", COUNT),  # type: ignore[arg-type]
                     target=target, **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (kr(None, maintain=Maintain(below=3.0)), "maintain"),
        (kr(metric=RatioMetric(COUNT, COUNT)), "ratios"),
        (kr(metric=SimpleMetric(event="x", aggregate="max", field=("data", "v"))), "max"),
        (kr(baseline_from="history", baseline_waiting=True), "baseline"),
    ],
)
def test_what_gets_no_forecast_says_why(result: KeyResult, reason: str) -> None:
    out = forecast_key_result(result, PERIOD, TZ, at(date(2026, 2, 1)), 0.0, steady(3, 27))
    assert isinstance(out, NoForecast) and reason in out.reason


def test_before_the_start_and_with_too_few_days() -> None:
    early = forecast_key_result(kr(), PERIOD, TZ, at(date(2026, 1, 1)), 0.0, {})
    assert isinstance(early, NoForecast) and "not started" in early.reason
    few = forecast_key_result(kr(), PERIOD, TZ, at(date(2026, 1, 9)), 12.0, steady(3, 5))
    assert isinstance(few, NoForecast) and f"needs {MIN_BASIS_DAYS}" in few.reason
    # Counts never go down: a target already reached is certain, even on day two.
    done = forecast_key_result(kr(10.0), PERIOD, TZ, at(date(2026, 1, 6)), 12.0, steady(6, 2))
    assert isinstance(done, KeyResultForecast) and done.probability == 1.0


def test_after_the_end_the_value_is_final() -> None:
    days = steady(5, 84)
    late = at(date(2026, 4, 2))
    hit = forecast_key_result(kr(400.0), PERIOD, TZ, late, 420.0, days)
    miss = forecast_key_result(kr(500.0), PERIOD, TZ, late, 420.0, days)
    assert isinstance(hit, KeyResultForecast) and isinstance(miss, KeyResultForecast)
    assert (hit.probability, miss.probability) == (1.0, 0.0)
    assert hit.p10 == hit.p50 == hit.p90 == 420.0


def test_the_answer_moves_the_right_way_with_the_target_and_counts_are_certain() -> None:
    days = steady(5, 28)
    now = at(date(2026, 2, 2), 0)
    probabilities = []
    for target in (300.0, 380.0, 420.0, 460.0, 600.0):
        out = forecast_key_result(kr(target), PERIOD, TZ, now, 140.0, days)
        assert isinstance(out, KeyResultForecast)
        assert 140.0 <= out.p10 <= out.p50 <= out.p90
        probabilities.append(out.probability)
    assert probabilities == sorted(probabilities, reverse=True)
    assert probabilities[0] > 0.95 and probabilities[-1] < 0.05
    # 5 a day for 56 more days lands near 420: an even bet.
    assert 0.3 < probabilities[2] < 0.7


def test_required_pace_is_what_is_left_over_the_days_left() -> None:
    now = at(date(2026, 3, 20), 0)  # Europe/Madrid: 01:00 local, 23/24 of the day left
    out = forecast_key_result(kr(500.0), PERIOD, TZ, now, 350.0, steady(5, 74))
    assert isinstance(out, KeyResultForecast)
    assert out.required_per_day == pytest.approx(150.0 / (9 + 23 / 24))


def test_weekday_pattern_moves_the_forecast() -> None:
    # A studio that only works Monday to Friday: 28 days at 5 a weekday = 100.
    days = {d: (5.0 if d.weekday() < 5 else 0.0) for d in steady(0, 28)}
    friday_night = at(date(2026, 2, 6), 22)  # 23:00 local: only an hour of Friday left
    monday_morning = at(date(2026, 2, 9), 0)
    value = 125.0
    fri = forecast_key_result(kr(380.0), PERIOD, TZ, friday_night, value, {**days, date(2026, 2, 2): 5,
                              date(2026, 2, 3): 5, date(2026, 2, 4): 5, date(2026, 2, 5): 5,
                              date(2026, 2, 6): 5})  # fmt: skip
    assert isinstance(fri, KeyResultForecast)
    # 35 weekdays remain after Friday (7 weeks): 175 more, landing near 300, never 380.
    assert 280 < fri.p50 < 320 and fri.probability < 0.01
    assert isinstance(forecast_key_result(kr(300.0), PERIOD, TZ, monday_morning, value, days),
                      KeyResultForecast)  # fmt: skip


def test_cadence_a_slot_ended_short_is_final_and_open_slots_are_forecast() -> None:
    cadence = Cadence(every="day", at_least=3, weekdays=frozenset(range(5)))
    posts = kr(None, cadence=cadence)
    days = {d: (4.0 if d.weekday() < 5 else 0.0) for d in steady(0, 21)}
    ok = forecast_cadence(posts, PERIOD, TZ, at(date(2026, 1, 26), 0), days)
    assert isinstance(ok, KeyResultForecast) and 0.0 < ok.probability < 1.0
    assert ok.required_per_slot == 3.0
    short = forecast_cadence(posts, PERIOD, TZ, at(date(2026, 1, 26), 0),
                             {**days, date(2026, 1, 7): 2.0})  # fmt: skip
    assert isinstance(short, KeyResultForecast) and short.probability == 0.0
    assert "ended short" in short.method


@pytest.mark.parametrize("family", forecast_sim.FAMILIES)
def test_it_scores_better_than_the_linear_projection(family: str) -> None:
    found = forecast_sim.cases(family, 400, seed=7)
    assert len(found) == 400
    result = forecast_sim.reliability(family, found)
    assert result.brier < result.linear_brier, result
