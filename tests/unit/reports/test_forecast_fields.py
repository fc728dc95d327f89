"""The forecast in the reports: `progress`'s key-result and objective entries, `history`'s
days and CSV, the table's column (reports/forecasts.py, progress.py, history.py, table.py)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rich.console import Console

from okrflow.domain.forecast import KeyResultForecast, NoForecast
from okrflow.domain.forecast_objective import ObjectiveForecast
from okrflow.domain.forecast_plan import PlanForecast
from okrflow.domain.model import Cadence, KeyResult, Maintain, Objective, Period, Plan, SimpleMetric
from okrflow.domain.progress import SeriesState, judge_plan, measure_plan
from okrflow.reports.forecasts import (
    ForecastMemo,
    KeyResultForecastFigures,
    ObjectiveForecastFigures,
    counted_after,
    fingerprint,
    key_result_outlook,
    objective_outlook,
    outlook_json,
    plan_forecast,
    plan_tree,
)
from okrflow.reports.progress import ProgressReport, shop_progress
from okrflow.reports.table import render_progress

PERIOD = Period(date(2026, 1, 5), date(2026, 3, 29))
NOW = datetime(2026, 2, 2, 12, tzinfo=UTC)
ORDERS = SimpleMetric(event="order.created", aggregate="count")


def _plan() -> Plan:
    orders = KeyResult("orders", "Orders", ORDERS, target=420.0)
    posts = KeyResult("posts", "Posts", ORDERS, cadence=Cadence("day", 1, frozenset(range(5))))
    calm = KeyResult("calm", "Calm", ORDERS, maintain=Maintain(below=3.0))
    return Plan("s", "UTC", (
        Objective("sales", "Sales", "team", "team", PERIOD, (orders, posts)),
        Objective("quiet", "Quiet", "team", "team", PERIOD, (calm,), parent="sales"),
    ))  # fmt: skip


def _states(days: int = 28) -> dict[tuple[str, str], dict[str, SeriesState]]:
    counted = {PERIOD.start + timedelta(days=i): 5.0 for i in range(days)}
    counts = {d: 5 for d in counted}
    weekdays = {d: 2 for d in counted if d.weekday() < 5}
    return {
        ("sales", "orders"): {"value": SeriesState(5 * days, 5.0 * days, day_counts=counts,
                                                   day_totals=counted)},
        ("sales", "posts"): {"value": SeriesState(sum(weekdays.values()), 0.0,
                                                  day_counts=weekdays)},
    }  # fmt: skip


def _report() -> ProgressReport:
    plan, states = _plan(), _states()
    measures = measure_plan(plan, states)
    forecast = plan_forecast(plan, states, NOW, measures)
    shop = shop_progress(plan, judge_plan(plan, measures, NOW), forecast, None, ())
    return ProgressReport(NOW, (shop,))


def test_key_results_and_objectives_carry_the_forecast_in_a_stable_order() -> None:
    doc: Any = _report().to_json()
    json.dumps(doc, allow_nan=False)
    sales, quiet = doc["shops"][0]["objectives"]
    orders, posts = sales["key_results"]
    keys = list(orders)
    assert keys[keys.index("last_event_at") + 1 :] == ["forecast", "forecast_reason"]
    assert list(orders["forecast"]) == [
        "probability", "p10", "p50", "p90", "required_per_day", "basis_days", "method",
    ]  # fmt: skip
    assert orders["forecast_reason"] is None
    f = orders["forecast"]
    assert 0 < f["probability"] < 1 and f["p10"] <= f["p50"] <= f["p90"]
    assert f["basis_days"] == 28 and "by weekday" in f["method"]
    # 140 counted, 280 to go over 55.5 days left
    assert f["required_per_day"] == round(280 / 55.5, 6)
    assert posts["forecast"]["required_per_slot"] == 1  # a cadence: per slot too
    (calm,) = quiet["key_results"]
    assert calm["forecast"] is None and "maintain" in calm["forecast_reason"]
    # objectives: after the status, before the key results
    okeys = list(sales)
    assert okeys[okeys.index("status") + 1 : okeys.index("key_results")] == [
        "forecast", "forecast_reason",
    ]  # fmt: skip
    # A maintain key result holds to the end as it holds now: calm holds (0 < 3).
    assert quiet["forecast"] == {"probability": 1.0, "p50_progress": 1.0}
    assert sales["forecast_reason"] is None
    chances = orders["forecast"]["probability"] * posts["forecast"]["probability"]
    assert sales["forecast"]["probability"] == round(chances, 6)


def test_figures_are_rounded_as_printed() -> None:
    raw = KeyResultForecast(0.123456789, 10.1234567891, 12.0, 14.5, 1 / 3, 9, "m", None)
    figures = key_result_outlook(raw)
    assert figures == KeyResultForecastFigures(0.123457, 10.123457, 12, 14.5, 0.333333, 9, "m")
    assert "required_per_slot" not in figures.to_json()
    assert objective_outlook(ObjectiveForecast(0.5, 2 / 3)) == ObjectiveForecastFigures(
        0.5, 0.666667
    )
    assert outlook_json(NoForecast("why")) == {"forecast": None, "forecast_reason": "why"}


def test_the_table_has_a_forecast_column() -> None:
    out = io.StringIO()
    render_progress(_report(), Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "chance" in "".join(text.splitlines()[1:5])
    doc: Any = _report().to_json()
    orders = doc["shops"][0]["objectives"][0]["key_results"][0]
    shown = f"{orders['forecast']['probability'] * 100:.0f}%"
    assert shown in next(line for line in text.splitlines() if "Orders" in line)
    assert next(line for line in text.splitlines() if "Calm" in line).rstrip("│ ").endswith("-")


def test_the_plan_tree_keeps_the_objectives_below() -> None:
    plan = _plan()
    assert [o.key for o in plan_tree(plan, ["sales"]).objectives] == ["sales", "quiet"]
    assert [o.key for o in plan_tree(plan, ["quiet"]).objectives] == ["quiet"]


def test_counted_after_and_the_memo() -> None:
    states = _states(10)
    last = PERIOD.start + timedelta(days=9)
    assert counted_after(states, last - timedelta(days=1))
    assert not counted_after(states, last)
    plan = _plan()
    assert fingerprint(plan, states) != fingerprint(plan, _states(11))
    memo = ForecastMemo(size=1)
    calls: list[int] = []

    def compute() -> PlanForecast:
        calls.append(1)
        return plan_forecast(plan, states, NOW)

    first = memo.get(("k", 1), compute)
    assert memo.get(("k", 1), compute) is first
    memo.get(("k", 2), compute)
    memo.get(("k", 1), compute)  # pushed out by the bound
    assert len(calls) == 3
