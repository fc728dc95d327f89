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
# A weekday with nothing on any of its days is taken as closed (a rate of 0) when
# the open days' rate would have put at least this many events there.
CLOSED_EVENTS = 4.0
# Degrees of freedom a day's variance needs around the weekdays' own means; with fewer it is
# measured around the shrunk means (counts), which leave more.
MIN_DOF = 7
# How far ahead, in days after the data, a fitted trend is extended before it is held (a
# year: periods are shorter, so a trend runs to their end).
TREND_HORIZON = 366
# The prior spread of trends: the rate is expected to move by about this share of itself
# over a whole period (a normal prior on the relative change a day, of standard deviation
# TREND_PERIOD_SHARE / the period's days). A fitted slope is shrunk towards 0 by it, so a
# few noisy days do not tilt the whole forecast, and its remaining doubt widens it.
TREND_PERIOD_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class DayRate:
    """What the complete days so far say about one day's increment."""

    weekday_mean: tuple[float, ...]  # 7 entries, Monday first
    # Each weekday's mean is pull * (the open weekdays' pooled mean) + (1 - pull) * its own
    # days' mean: the doubt of the pooled part is shared by every weekday, the rest is not.
    weekday_pull: tuple[float, ...]
    weekday_error: tuple[float, ...]  # the variance of each weekday's own part
    pooled_error: float  # the variance of the pooled mean
    dispersion: float  # variance / mean of a day's increment around its weekday mean
    variance: float  # the pooled variance of a day around its weekday mean
    trend: float  # relative change of the rate per day, fitted and shrunk by its prior
    trend_error: float  # the variance of `trend`'s estimate
    days: int
    kind: Kind


def estimate(
    values: Sequence[float], weekdays: Sequence[int], kind: Kind, period_days: int
) -> DayRate:
    """The rate of one series from its complete days: `values[i]` is the increment of day i
    (oldest first) and `weekdays[i]` its weekday (0 = Monday); `period_days` the length of
    the period (it sets how fast a trend is expected to move)."""
    n = len(values)
    sums = [0.0] * 7
    seen = [0] * 7
    for value, weekday in zip(values, weekdays, strict=True):
        sums[weekday] += value
        seen[weekday] += 1
    closed = _closed(sums, seen, kind)
    # Two passes: the weekday means' shrinking needs the days' variance, which is then
    # measured again around the shrunk means, with the degrees of freedom they leave.
    raw = [0.0 if closed[w] or not seen[w] else sums[w] / seen[w] for w in range(7)]
    groups = sum(1 for w in range(7) if seen[w] and not closed[w])
    if n - groups >= MIN_DOF or kind != "counts":
        dispersion, variance = _spread(values, [raw[w] for w in weekdays], n - groups, kind)
    else:
        dispersion, variance = 1.0, max(sum(values) / n, 1e-9)  # Poisson, to start with
    means, pulls, errors, pooled_error = _weekday_means(
        sums, seen, closed, dispersion, variance, kind
    )
    if n - groups < MIN_DOF and kind == "counts":
        used = 1.0 + sum(1.0 - pulls[w] for w in range(7) if seen[w] and not closed[w])
        dispersion, variance = _spread(values, [means[w] for w in weekdays], n - used, kind)
        means, pulls, errors, pooled_error = _weekday_means(
            sums, seen, closed, dispersion, variance, kind
        )
    expected = [means[w] for w in weekdays]
    trend, trend_error = (0.0, 0.0)
    if kind != "changes":
        trend, trend_error = _trend(values, expected, TREND_PERIOD_SHARE / period_days)
    return DayRate(
        means, pulls, errors, pooled_error, dispersion, variance, trend, trend_error, n, kind
    )


def _closed(sums: Sequence[float], seen: Sequence[int], kind: Kind) -> list[bool]:
    """Weekdays that look closed: nothing on any of them, while the open days'
    rate would have put at least CLOSED_EVENTS there."""
    if kind == "changes":
        return [False] * 7
    days = sum(seen)
    rate = sum(sums) / days if days else 0.0
    return [seen[w] >= 1 and sums[w] == 0 and rate * seen[w] >= CLOSED_EVENTS for w in range(7)]


def _spread(
    values: Sequence[float], expected: Sequence[float], dof: float, kind: Kind
) -> tuple[float, float]:
    """The dispersion (variance over mean) and the variance of a day around `expected` with
    `dof` degrees of freedom, widened by (1 + 2 / dof) for the doubt of a variance estimated
    from few days. Counts keep at least half of Poisson's variance: not truncated at 1, since
    an estimate scatters around 1 for Poisson days and cutting off its lower half would widen
    every forecast."""
    n = len(values)
    residual = sum((v - e) ** 2 for v, e in zip(values, expected, strict=True))
    dof = max(1.0, dof)
    variance = residual / dof * (1.0 + 2.0 / dof)
    mass = sum(abs(e) for e in expected) / n
    dispersion = variance / mass if mass > 0 else 1.0
    if kind == "counts":
        dispersion = max(0.5, dispersion)
        variance = max(variance, 0.5 * mass)
    return dispersion, variance


def _weekday_means(
    sums: Sequence[float],
    seen: Sequence[int],
    closed: Sequence[bool],
    dispersion: float,
    variance: float,
    kind: Kind,
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], float]:
    """Each weekday's mean, its pull and its own part's variance, and the pooled mean's
    variance (see DayRate): its own days' mean, shrunk
    towards the mean of the open weekdays by as much as its noise exceeds the spread between
    weekdays (empirical Bayes); closed weekdays are 0, unseen ones take the open mean."""
    open_days = [w for w in range(7) if seen[w] and not closed[w]]
    total_days = sum(seen[w] for w in open_days) or 1
    pooled = sum(sums[w] for w in open_days) / total_days

    def noise(w: int) -> float:  # the variance of weekday w's own mean
        day = variance if kind == "changes" else dispersion * abs(pooled)
        return day / seen[w]

    pooled_error = (variance if kind == "changes" else dispersion * abs(pooled)) / total_days
    if kind == "counts":
        pooled_error = max(pooled_error, dispersion / total_days)  # a pseudo-event at zero
    raw = {w: sums[w] / seen[w] for w in open_days}
    between = 0.0
    if len(open_days) >= 2:
        scatter = sum((raw[w] - pooled) ** 2 for w in open_days) / (len(open_days) - 1)
        between = max(0.0, scatter - sum(noise(w) for w in open_days) / len(open_days))
    means, pulls, errors = [], [], []
    for w in range(7):
        if closed[w]:
            means.append(0.0)
            pulls.append(0.0)
            errors.append(0.0)
        elif w not in raw:
            means.append(pooled)
            pulls.append(1.0)
            errors.append(between)
        else:
            pull = noise(w) / (noise(w) + between) if noise(w) + between > 0 else 1.0
            means.append(pull * pooled + (1 - pull) * raw[w])
            pulls.append(pull)
            errors.append((1 - pull) * noise(w))
    return tuple(means), tuple(pulls), tuple(errors), pooled_error


def _trend(
    values: Sequence[float], expected: Sequence[float], prior_sd: float
) -> tuple[float, float]:
    """The relative change of the rate per day, by least squares of each day's ratio to its
    weekday mean on the day index, and the variance of that slope."""
    n = len(values)
    level = sum(expected) / n
    prior = prior_sd * prior_sd
    if level <= 0 or n < 3:
        return 0.0, prior
    xs = [i - (n - 1) / 2 for i in range(n)]
    sxx = sum(x * x for x in xs)
    gaps = [(v - e) / level for v, e in zip(values, expected, strict=True)]
    slope = sum(x * g for x, g in zip(xs, gaps, strict=True)) / sxx
    resid = sum((g - slope * x) ** 2 for x, g in zip(xs, gaps, strict=True)) / max(1, n - 2)
    error = resid / sxx
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
    shared = sum(c * p for c, p in zip(per_weekday, rate.weekday_pull, strict=True))
    level = shared * shared * rate.pooled_error
    level += sum(c * c * e for c, e in zip(per_weekday, rate.weekday_error, strict=True))
    tilt = sum(
        rate.weekday_mean[w] * f * offset
        for (_, offset), w, f in zip(lifts, weekdays, fractions, strict=True)
    )
    level += tilt * tilt * rate.trend_error
    return Ahead(mean, process, level)
