"""Will a key result reach its target by the end of its period? (docs/formulas.md, "Forecast").

Pure: the days counted so far and the instant are arguments. Additive metrics (count, sum,
count_distinct) forecast what the days ahead add; `latest` forecasts the level's day-to-day
changes; cadence key results (`forecast_cadence.py`) the share of slots met. What was counted
already is certain; only the days ahead are uncertain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import NormalDist

from scipy.special import gammaincc, gammainccinv

from okrflow.domain.forecast_model import Ahead, DayRate, Kind, ahead, estimate
from okrflow.domain.model import KeyResult, Period, RatioMetric
from okrflow.domain.periods import local_day, local_midnight, period_bounds

# Complete local days of the period a forecast needs: one of each weekday.
MIN_BASIS_DAYS = 7
QUANTILES = (0.1, 0.5, 0.9)
_NORMAL = NormalDist()


@dataclass(frozen=True)
class KeyResultForecast:
    """The chance of reaching the target by the period's end, the end value's p10/p50/p90,
    the pace it takes from now, and what the forecast stands on."""

    probability: float
    p10: float
    p50: float
    p90: float
    required_per_day: float
    basis_days: int
    method: str
    required_per_slot: float | None = None  # cadence key results


@dataclass(frozen=True)
class NoForecast:
    """No honest forecast exists (yet): why, in words."""

    reason: str


Outcome = KeyResultForecast | NoForecast


@dataclass(frozen=True)
class Clock:
    """Where `now` falls in a period, in the shop's local days."""

    today: date  # the local day holding now
    today_left: float  # the share of today still ahead, 0..1
    ahead: tuple[date, ...]  # the period's days after today

    @property
    def days_left(self) -> float:
        return self.today_left + len(self.ahead)


def clock(period: Period, tz: str, now: datetime) -> Clock:
    today = local_day(now, tz)
    start, end = local_midnight(today, tz), local_midnight(today + timedelta(days=1), tz)
    left = (end - now).total_seconds() / (end - start).total_seconds()
    after = []
    day = today + timedelta(days=1)
    while day <= period.end:
        after.append(day)
        day += timedelta(days=1)
    return Clock(today=today, today_left=min(1.0, max(0.0, left)), ahead=tuple(after))


def refusal(kr: KeyResult, period: Period, tz: str, now: datetime) -> NoForecast | None:
    """Why a key result gets no forecast at `now`, or None when it can get one."""
    if kr.baseline_waiting:
        return NoForecast("its baseline from data is not measured yet")
    if kr.maintain is not None:
        return NoForecast("a maintain key result holds or breaks; it has no target to reach")
    if isinstance(kr.metric, RatioMetric):
        return NoForecast("ratios are not forecast: their parts move together")
    if kr.metric.aggregate in ("max", "min"):
        return NoForecast(f"{kr.metric.aggregate} levels are not forecast")
    start, _ = period_bounds(period, tz)
    if now < start:
        return NoForecast("the period has not started")
    return None


def complete_days(period: Period, today: date) -> list[date]:
    """The period's local days before today (all of them once the period is over)."""
    last = min(today - timedelta(days=1), period.end)
    out = []
    day = period.start
    while day <= last:
        out.append(day)
        day += timedelta(days=1)
    return out


def forecast_key_result(
    kr: KeyResult,
    period: Period,
    tz: str,
    now: datetime,
    value: float,
    days: Mapping[date, float],
) -> Outcome:
    """The forecast of a target key result (cadence ones: `forecast_cadence`). `value` is V
    now; `days` per local day of the period (today's so far included): the increment of the
    aggregate for additive metrics, the day's closing level for `latest` (absent: no event)."""
    refused = refusal(kr, period, tz, now)
    if refused is not None:
        return refused
    assert kr.target is not None and not isinstance(kr.metric, RatioMetric)
    target = kr.target
    rising = target > kr.baseline
    reached = value >= target if rising else value <= target
    basis = complete_days(period, local_day(now, tz))
    _, end = period_bounds(period, tz)
    if now >= end:
        return _final(value, reached, len(basis))
    span = clock(period, tz, now)
    if kr.metric.aggregate == "latest":
        values, weekdays = _changes(basis, days)
        kind: Kind = "changes"
    else:
        values = [days.get(d, 0.0) for d in basis]
        weekdays = [d.weekday() for d in basis]
        kind = "counts" if kr.metric.aggregate != "sum" else "amounts"
        if kind == "amounts" and any(v < 0 for v in values):
            kind = "changes"
    required = max(0.0, (target - value) if rising else (value - target)) / span.days_left
    if len(values) < MIN_BASIS_DAYS:
        if reached and kind == "counts":  # counts never go down: reached is final
            return _final(value, True, len(values), required=0.0)
        return NoForecast(
            f"needs {MIN_BASIS_DAYS} complete days of data in the period, has {len(values)}"
        )
    rate = estimate(values, weekdays, kind, (period.end - period.start).days + 1)
    weekdays_ahead = [span.today.weekday(), *(d.weekday() for d in span.ahead)]
    fractions = [span.today_left, *([1.0] * len(span.ahead))]
    sum_ahead = ahead(rate, weekdays_ahead, fractions)
    probability, quantiles = _distribution(sum_ahead, kind, target - value, rising)
    return KeyResultForecast(
        probability=probability,
        p10=value + quantiles[0],
        p50=value + quantiles[1],
        p90=value + quantiles[2],
        required_per_day=required,
        basis_days=len(values),
        method=describe(rate),
    )


def _final(value: float, reached: bool, basis: int, required: float = 0.0) -> KeyResultForecast:
    return KeyResultForecast(
        probability=1.0 if reached else 0.0,
        p10=value,
        p50=value,
        p90=value,
        required_per_day=required,
        basis_days=basis,
        method="final: the target is reached and counts never go down"
        if reached
        else "final: the period has ended",
    )


def _changes(basis: list[date], days: Mapping[date, float]) -> tuple[list[float], list[int]]:
    """A level's day-to-day changes over the complete days, from the first day with a level
    (a day without an event keeps the level: a change of 0)."""
    values: list[float] = []
    weekdays: list[int] = []
    level: float | None = None
    for day in basis:
        closing = days.get(day)
        if closing is None:
            if level is not None:
                values.append(0.0)
                weekdays.append(day.weekday())
            continue
        if level is not None:
            values.append(closing - level)
            weekdays.append(day.weekday())
        level = closing
    return values, weekdays


def _distribution(
    s: Ahead, kind: Kind, need: float, rising: bool
) -> tuple[float, tuple[float, float, float]]:
    """P(what the days ahead add reaches `need`), and its quantiles: a gamma with the same
    mean and variance for counts and amounts (never below 0), a normal for changes."""
    if kind == "changes" or s.mean <= 0 or s.variance <= 0:
        sd = math.sqrt(max(s.variance, 0.0))
        if sd == 0:
            hit = s.mean >= need if rising else s.mean <= need
            return (1.0 if hit else 0.0), (s.mean, s.mean, s.mean)
        z = (need - s.mean) / sd
        above = 1.0 - _NORMAL.cdf(z)
        quantiles = tuple(s.mean + sd * _NORMAL.inv_cdf(q) for q in QUANTILES)
        return (above if rising else 1.0 - above), (quantiles[0], quantiles[1], quantiles[2])
    shape = s.mean * s.mean / s.variance
    scale = s.variance / s.mean
    # A count reaches `need` when its continuous stand-in passes need - 1/2.
    threshold = need - 0.5 if kind == "counts" else need
    above = 1.0 if threshold <= 0 else float(gammaincc(shape, threshold / scale))
    quantiles = tuple(float(gammainccinv(shape, 1.0 - q)) * scale for q in QUANTILES)
    return (above if rising else 1.0 - above), (quantiles[0], quantiles[1], quantiles[2])


def describe(rate: DayRate) -> str:
    """The method, in words, for `method`."""
    what = {"counts": "daily counts", "amounts": "daily amounts", "changes": "daily changes"}
    parts = [f"{rate.days} days of {what[rate.kind]}, by weekday"]
    if rate.kind != "changes":
        parts.append(f"dispersion {rate.dispersion:.1f}")
    if rate.trend and abs(rate.trend) > 2 * math.sqrt(rate.trend_error):
        parts.append(f"trend {rate.trend * 100:+.1f}% a day")
    return "; ".join(parts)
