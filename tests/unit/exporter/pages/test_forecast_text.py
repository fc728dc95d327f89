"""What the pages say and draw of a forecast: the words (pages/forecast_text.py), the
burn-up's band and its round axis ticks (pages/svg.py)."""

from __future__ import annotations

import itertools
import math
import re
from datetime import date

import pytest

from okrflow.domain.forecast import NoForecast
from okrflow.domain.model import KeyResult, Objective, Period, SimpleMetric
from okrflow.exporter.pages.forecast_text import (
    band,
    chance,
    day_text,
    key_result_text,
    objective_text,
)
from okrflow.exporter.pages.svg import Band, burn_up, ticks
from okrflow.reports.figures import KeyResultFigures
from okrflow.reports.forecasts import KeyResultForecastFigures, ObjectiveForecastFigures
from okrflow.reports.history import KeyResultDay

END = date(2026, 6, 30)


def _forecast(
    p: float, per_day: float = 1.4, per_slot: float | None = None
) -> KeyResultForecastFigures:
    return KeyResultForecastFigures(p, 215, 226, 238, per_day, 40, "m", per_slot)


@pytest.mark.parametrize(
    ("p", "words"),
    [(1.0, "certain"), (0.999, "very likely"), (0.8, "very likely"), (0.79, "likely"),
     (0.6, "likely"), (0.5, "as likely as not"), (0.4, "as likely as not"),
     (0.39, "unlikely"), (0.2, "unlikely"), (0.19, "very unlikely"), (0.0, "very unlikely")],
)  # fmt: skip
def test_bands(p: float, words: str) -> None:
    assert band(p) == words


def test_chance_never_rounds_to_a_certainty() -> None:
    assert [chance(p) for p in (0.0, 0.004, 0.005, 0.72, 0.995, 0.9999, 1.0)] == [
        "0%", "<1%", "1%", "72%", ">99%", ">99%", "100%",
    ]  # fmt: skip


def test_a_key_result_in_words() -> None:
    assert day_text(END) == "30 June" and day_text(date(2026, 3, 1)) == "1 March"
    assert (
        key_result_text(_forecast(0.72), 230, 200, END)
        == "likely (72%) to reach 230 by 30 June; needs 1.4 a day"
    )
    assert (
        key_result_text(_forecast(0.3, 2.0), 5, 20, END)
        == "unlikely (30%) to come down to 5 by 30 June; needs 2 a day"
    )
    assert (
        key_result_text(_forecast(0.91, 0.6, per_slot=3.0), 195, 0, END)
        == "very likely (91%) to reach 195 by 30 June; needs 3 in every slot left"
    )
    assert key_result_text(_forecast(1.0, 0.0), 10, 0, END) == (
        "certain (100%) to reach 10 by 30 June; met now"
    )
    assert key_result_text(_forecast(0.0, 0.0), 10, 0, END) == "cannot reach 10 by 30 June any more"
    assert key_result_text(_forecast(0.0, 9.0), 1_500, 0, END) == (
        "very unlikely (0%) to reach 1,500 by 30 June; needs 9 a day"
    )
    reason = "needs 7 complete days of data in the period, has 3"
    assert key_result_text(NoForecast(reason), 230, 200, END) == f"none ({reason})"


def test_an_objective_in_words() -> None:
    assert (
        objective_text(ObjectiveForecastFigures(0.456, 0.83), END)
        == "as likely as not (46%) to be fully achieved by 30 June; median progress 83%"
    )
    assert objective_text(NoForecast("key result x: ratios are not forecast"), END) == (
        "none (key result x: ratios are not forecast)"
    )


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0, 230, [0, 50, 100, 150, 200, 250]), (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
     (200, 231, [200, 210, 220, 230, 240]), (0, 12, [0, 2.5, 5, 7.5, 10, 12.5]),
     (0, 0, [0, 0.2]), (-5, 7, [-5, -2.5, 0, 2.5, 5, 7.5]), (0, 0.3, [0, 0.1, 0.2, 0.3])],
)  # fmt: skip
def test_ticks_are_round_steps(low: float, high: float, expected: list[float]) -> None:
    got = ticks(low, high)
    assert got == pytest.approx(expected)
    step = got[1] - got[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 9) in (1, 2, 2.5, 5)
    assert got[0] <= low and got[-1] >= high


def _chart(band_: Band | None, last_day: int = 20) -> str:
    kr = KeyResult("clients", "Clients", SimpleMetric("customer.created", "count"),
                   baseline=200, target=230)  # fmt: skip
    objective = Objective("o", "O", "x", "team", Period(date(2026, 6, 1), END), (kr,))
    days = [
        KeyResultDay(date(2026, 6, d), KeyResultFigures(200 + d, 200, 230, None, None, None,
                                                       True, None), NoForecast("-"))
        for d in range(1, last_day + 1)
    ]  # fmt: skip
    return burn_up(kr, objective, "UTC", days, band_)


def test_the_burn_up_draws_the_band_from_today_to_the_end() -> None:
    text = "likely (72%) to reach 230 by 30 June; needs 1 a day"
    svg = _chart(Band(_forecast(0.72), text))
    assert 'data-p10="215" data-p50="226" data-p90="238"' in svg
    (points,) = re.findall(r'class="forecast-band" points="([^"]+)"', svg)
    (x0, _), (x1, y90), (x1b, y10) = (tuple(map(float, p.split(","))) for p in points.split())
    assert x0 < x1 == x1b and y90 < y10  # to the period's end; p90 above p10
    assert f'data-forecast="{text}"' in svg and "forecast: likely (72%)" in svg
    labels = [float(t) for t in re.findall(r'data-tick="([^"]+)"', svg)]
    assert labels[-1] >= 238 and labels == sorted(labels)
    assert all(round(b - a, 9) == round(labels[1] - labels[0], 9)
               for a, b in itertools.pairwise(labels))  # fmt: skip
    assert "forecast-band" not in _chart(None)
    assert "forecast-band" not in _chart(Band(_forecast(0.72), text), last_day=30)  # ended
