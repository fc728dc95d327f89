"""An objective's forecast from its parts (docs/formulas.md, "Forecast")."""

from __future__ import annotations

import pytest

from okrflow.domain.forecast import KeyResultForecast, NoForecast
from okrflow.domain.forecast_objective import (
    ObjectiveForecast,
    Part,
    key_result_part,
    objective_forecast,
)


def forecast(probability: float, p50: float) -> KeyResultForecast:
    return KeyResultForecast(probability, p50 - 10, p50, p50 + 10, 1.0, 20, "test")


def test_every_part_must_reach_one_so_the_chances_multiply() -> None:
    parts = [Part(1.0, 0.9, 1.0), Part(2.0, 0.5, 0.7), Part(1.0, 1.0, 1.0)]
    out = objective_forecast(parts)
    assert isinstance(out, ObjectiveForecast)
    assert out.probability == pytest.approx(0.45)
    assert out.p50_progress == pytest.approx((1.0 + 1.4 + 1.0) / 4)


def test_a_part_without_a_forecast_leaves_the_objective_without_one() -> None:
    out = objective_forecast([Part(1.0, 0.9, 1.0), NoForecast("ratios are not forecast")])
    assert isinstance(out, NoForecast) and "ratios" in out.reason
    assert isinstance(objective_forecast([]), NoForecast)


def test_key_result_progress_is_clamped_and_follows_a_decrease() -> None:
    assert key_result_part(1.0, 200.0, 230.0, forecast(0.5, 215.0)).p50_progress == 0.5
    assert key_result_part(1.0, 200.0, 230.0, forecast(0.99, 260.0)).p50_progress == 1.0
    assert key_result_part(1.0, 0.05, 0.03, forecast(0.2, 0.04)).p50_progress == pytest.approx(0.5)
    assert key_result_part(1.0, 0.0, 100.0, forecast(0.0, -5.0)).p50_progress == 0.0
