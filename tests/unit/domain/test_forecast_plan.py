"""Forecasts for a whole plan from its counted states (domain/forecast_plan.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from okrflow.domain.forecast import KeyResultForecast, NoForecast
from okrflow.domain.forecast_objective import ObjectiveForecast
from okrflow.domain.forecast_plan import forecast_plan
from okrflow.domain.model import (
    Cadence,
    KeyResult,
    Maintain,
    Objective,
    Period,
    Plan,
    RatioMetric,
    SimpleMetric,
)
from okrflow.domain.progress import SeriesState, measure_plan

PERIOD = Period(date(2026, 1, 5), date(2026, 3, 29))
ORDERS = SimpleMetric(event="order.created", aggregate="count")
REVENUE = SimpleMetric(event="order.created", aggregate="sum", field=("data", "total"))
FOLLOWERS = SimpleMetric(event="social.followers", aggregate="latest", field=("data", "n"))
NOW = datetime(2026, 2, 2, 12, tzinfo=UTC)


def days(per_day: float, n: int) -> dict[date, float]:
    return {PERIOD.start + timedelta(days=i): per_day for i in range(n)}


def objective(key: str, *krs: KeyResult, parent: str | None = None) -> Objective:
    return Objective(key, key, "team", "team", PERIOD, krs, parent=parent)


def test_each_kind_reads_its_own_days_and_objectives_combine() -> None:
    orders = KeyResult("orders", "Orders", ORDERS, target=420.0)
    revenue = KeyResult("revenue", "Revenue", REVENUE, target=50_000.0)
    followers = KeyResult("followers", "Followers", FOLLOWERS, baseline=1000.0, target=1100.0)
    posts = KeyResult("posts", "Posts", ORDERS, cadence=Cadence("day", 1, frozenset(range(5))))
    plan = Plan("s", "UTC", (
        objective("sales", orders, revenue),
        objective("social", followers, posts, parent="sales"),
    ))  # fmt: skip
    counted = days(5, 29)
    states = {
        ("sales", "orders"): {"value": SeriesState(145, 145.0, day_counts={d: 5 for d in counted},
                                                   day_totals=counted)},
        ("sales", "revenue"): {"value": SeriesState(145, 14_500.0, day_totals=days(500, 29))},
        ("social", "followers"): {"value": SeriesState(
            29, 0.0, level=1029.0,
            day_levels={d: 1000.0 + i for i, d in enumerate(days(0, 29))})},
        ("social", "posts"): {"value": SeriesState(
            58, 58.0, day_counts={d: 2 for d in counted if d.weekday() < 5})},
    }  # fmt: skip
    forecast = forecast_plan(plan, measure_plan(plan, states), states, NOW)
    outcomes = forecast.key_results
    assert all(isinstance(o, KeyResultForecast) for o in outcomes.values()), outcomes
    orders_f = outcomes["sales", "orders"]
    assert isinstance(orders_f, KeyResultForecast) and 0.3 < orders_f.probability < 0.7
    revenue_f = outcomes["sales", "revenue"]  # 500 a day lands near 42,000: short of 50,000
    assert isinstance(revenue_f, KeyResultForecast) and revenue_f.probability < 0.05
    followers_f = outcomes["social", "followers"]  # +1 a day: ~1085 at the end
    assert isinstance(followers_f, KeyResultForecast) and 1070 < followers_f.p50 < 1100
    social = forecast.objectives["social"]
    sales = forecast.objectives["sales"]
    assert isinstance(social, ObjectiveForecast) and isinstance(sales, ObjectiveForecast)
    posts_f = outcomes["social", "posts"]
    assert isinstance(posts_f, KeyResultForecast)
    assert social.probability == pytest.approx(followers_f.probability * posts_f.probability)
    assert sales.probability == pytest.approx(
        orders_f.probability * revenue_f.probability * social.probability
    )


def test_a_maintain_key_result_holds_as_it_holds_now_and_reasons_name_the_part() -> None:
    calm = KeyResult("calm", "Calm", ORDERS, target=None, maintain=Maintain(below=3.0))
    broken = KeyResult("broken", "Broken", ORDERS, target=None, maintain=Maintain(above=3.0))
    ratio = KeyResult("ratio", "Ratio", RatioMetric(ORDERS, ORDERS), target=0.5)
    plan = Plan("s", "UTC", (
        objective("held", calm), objective("lost", broken),
        objective("top", ratio), objective("child", calm, ratio, parent="top"),
    ))  # fmt: skip
    forecast = forecast_plan(plan, measure_plan(plan, {}), {}, NOW)
    assert isinstance(forecast.key_results["held", "calm"], NoForecast)
    held, lost = forecast.objectives["held"], forecast.objectives["lost"]
    assert isinstance(held, ObjectiveForecast) and held.probability == 1.0
    assert isinstance(lost, ObjectiveForecast) and lost.probability == 0.0
    top = forecast.objectives["top"]
    assert isinstance(top, NoForecast) and top.reason.startswith("key result ratio: ratios")
    child = forecast.objectives["child"]
    assert isinstance(child, NoForecast) and child.reason.startswith("key result ratio")
