"""The daily rate model behind every forecast (docs/formulas.md, "Forecast"). Pure.

From the complete local days counted so far it estimates, per weekday, the mean of a day's
increment, how much more than Poisson the days vary (the dispersion), a linear trend, and how
sure each of these estimates is; from that it gives the mean and the variance of what the
days still to come add, the estimates' own uncertainty included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# counts: numbers of events a day (count, count_distinct, cadence); amounts: a day's sum of a
# field (never below 0); changes: a level's day-to-day change (latest), of either sign.
Kind = Literal["counts", "amounts", "changes"]
# Prior weight, in days, pulling each weekday's mean towards the overall mean: with one week
# of data a weekday's mean is mostly its own day; a weekday that stays at zero (a closed
# Sunday) goes to zero.
WEEKDAY_PRIOR_DAYS = 0.25
# How far ahead, in days after the data, a fitted trend is extended before it is held.
TREND_HORIZON = 28
# A trend is fitted once there are this many days; before, a day's rate is taken as level.
TREND_MIN_DAYS = 14
# A fitted trend is used only when it stands this many standard errors away from 0.
TREND_T = 2.0
# The prior spread of trends (relative change of the rate per day, a normal prior): a fitted
# slope is shrunk towards 0 by it, so a few noisy days do not tilt the whole forecast; 0
# turns shrinking off and keeps only slopes TREND_T standard errors away from 0.
TREND_PRIOR_SD = 0.003


@dataclass(frozen=True, slots=True)
class DayRate:
    """What the complete days so far say about one day's increment."""

    weekday_mean: tuple[float, ...]  # 7 entries, Monday first
    weekday_error: tuple[float, ...]  # the variance of each weekday mean's estimate
    dispersion: float  # variance / mean of a day's increment around its weekday mean
    variance: float  # the pooled variance of a day around its weekday mean
    trend: float  # relative change of the rate per day, fitted (0 before TREND_MIN_DAYS)
    trend_error: float  # the variance of `trend`'s estimate
    days: int
    kind: Kind


def estimate(values: Sequence[float], weekdays: Sequence[int], kind: Kind) -> DayRate:
    """The rate of one series from its complete days: `values[i]` is the increment of day i
    (oldest first) and `weekdays[i]` its weekday (0 = Monday). Counts never vary less than
    Poisson (dispersion at least 1)."""
    n = len(values)
    overall = sum(values) / n
    sums = [0.0] * 7
    seen = [0] * 7
    for value, weekday in zip(values, weekdays, strict=True):
        sums[weekday] += value
        seen[weekday] += 1
    k = WEEKDAY_PRIOR_DAYS
    means = tuple((sums[w] + k * overall) / (seen[w] + k) for w in range(7))
    expected = [means[w] for w in weekdays]
    residual = sum((v - e) ** 2 for v, e in zip(values, expected, strict=True))
    dof = max(1, n - sum(1 for s in seen if s))
    variance = residual / dof
    mass = sum(abs(e) for e in expected) / n
    dispersion = variance / mass if mass > 0 else 1.0
    if kind == "counts":
        # Not truncated at Poisson's 1: an estimate scatters around 1 for Poisson days, and
        # cutting off its lower half would widen every forecast; half of Poisson at least.
        dispersion = max(0.5, dispersion)
        variance = max(variance, 0.5 * mass)

    def day_variance(w: int) -> float:
        return variance if kind == "changes" else dispersion * abs(means[w])

    # The variance of (S_w + k * overall) / (n_w + k): the weekday's own days, plus the
    # overall mean's share (with at least one pseudo-event's worth of doubt at zero).
    floor = dispersion / n if kind == "counts" else 0.0
    overall_error = max(variance / n, floor)
    errors = tuple(
        (seen[w] * day_variance(w) + k * k * overall_error) / (seen[w] + k) ** 2 for w in range(7)
    )
    trend, trend_error = (0.0, 0.0)
    if kind != "changes" and n >= TREND_MIN_DAYS:
        trend, trend_error = _trend(values, expected)
    return DayRate(means, errors, dispersion, variance, trend, trend_error, n, kind)


def _trend(values: Sequence[float], expected: Sequence[float]) -> tuple[float, float]:
    """The relative change of the rate per day, by least squares of each day's ratio to its
    weekday mean on the day index, and the variance of that slope."""
    n = len(values)
    level = sum(expected) / n
    if level <= 0:
        return 0.0, 0.0
    xs = [i - (n - 1) / 2 for i in range(n)]
    sxx = sum(x * x for x in xs)
    gaps = [(v - e) / level for v, e in zip(values, expected, strict=True)]
    slope = sum(x * g for x, g in zip(xs, gaps, strict=True)) / sxx
    resid = sum((g - slope * x) ** 2 for x, g in zip(xs, gaps, strict=True)) / max(1, n - 2)
    error = resid / sxx
    if TREND_PRIOR_SD <= 0:
        if slope * slope < TREND_T * TREND_T * error:
            return 0.0, 0.0
        return slope, error
    prior = TREND_PRIOR_SD * TREND_PRIOR_SD
    return slope * prior / (prior + error), prior * error / (prior + error)


@dataclass(frozen=True, slots=True)
class Ahead:
    """What the remaining days add: its mean, and its variance split into the days' own
    variation and the estimates' uncertainty (which all days share)."""

    mean: float
    process_variance: float
    level_variance: float

    @property
    def variance(self) -> float:
        return self.process_variance + self.level_variance

    @property
    def relative_level_variance(self) -> float:
        return self.level_variance / (self.mean * self.mean) if self.mean else 0.0


def _lifts(rate: DayRate, count: int) -> list[tuple[float, float]]:
    """Per day to come: the trend's factor on the rate, and its distance (in days) from the
    centre of the data, held after TREND_HORIZON days."""
    centre = (rate.days - 1) / 2
    out = []
    for i in range(count):
        offset = centre + min(i + 1, TREND_HORIZON)
        out.append((max(0.0, 1.0 + rate.trend * offset), offset))
    return out


def day_means(rate: DayRate, weekdays: Sequence[int], fractions: Sequence[float]) -> list[float]:
    """The expected increment of each day to come (`weekdays[i]`, of which `fractions[i]` is
    still ahead: 1 for a whole day, less for the rest of today)."""
    lifts = _lifts(rate, len(weekdays))
    return [
        rate.weekday_mean[w] * lift * f
        for (lift, _), w, f in zip(lifts, weekdays, fractions, strict=True)
    ]


def ahead(rate: DayRate, weekdays: Sequence[int], fractions: Sequence[float]) -> Ahead:
    """The sum over the days to come (as `day_means` takes them)."""
    lifts = _lifts(rate, len(weekdays))
    means = day_means(rate, weekdays, fractions)
    mean = sum(means)
    if rate.kind == "changes":
        process = rate.variance * sum(fractions)
    else:
        process = rate.dispersion * sum(abs(m) for m in means)
    # Each weekday's mean is one estimate for all its days ahead; the trend one for all days.
    per_weekday = [0.0] * 7
    for (lift, _), w, f in zip(lifts, weekdays, fractions, strict=True):
        per_weekday[w] += lift * f
    level = sum(c * c * e for c, e in zip(per_weekday, rate.weekday_error, strict=True))
    tilt = sum(
        rate.weekday_mean[w] * f * offset
        for (_, offset), w, f in zip(lifts, weekdays, fractions, strict=True)
    )
    level += tilt * tilt * rate.trend_error
    return Ahead(mean, process, level)
