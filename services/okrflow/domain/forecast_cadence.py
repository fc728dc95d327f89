"""The forecast of a cadence key result: the chance that every slot ends with its
`at_least` events, so that progress reaches 1 (docs/formulas.md, "Forecast"). Pure.

Slots already ended are certain. Each slot still open gets its events from the weekday rates
of the days it has left (`forecast_model`); the slots share one uncertain overall level, so
the chance is averaged over that level's spread (nine equal-weight points) rather than
multiplied as if the slots were independent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime

import numpy as np
from scipy.special import betainc, gammainc, gammaincinv

from okrflow.domain.forecast import (
    MIN_BASIS_DAYS,
    KeyResultForecast,
    NoForecast,
    Outcome,
    clock,
    complete_days,
    describe,
    refusal,
)
from okrflow.domain.forecast_model import ahead, day_means, estimate
from okrflow.domain.model import KeyResult, Period
from okrflow.domain.periods import cadence_slots, period_bounds

LEVEL_POINTS = 9
_Z = (-1.2815515655446004, 0.0, 1.2815515655446004)  # the normal's p10, p50, p90


def forecast_cadence(
    kr: KeyResult, period: Period, tz: str, now: datetime, days: Mapping[date, float]
) -> Outcome:
    """`days`: events counted per local day of the period (today's so far included)."""
    refused = refusal(kr, period, tz, now)
    if refused is not None:
        return refused
    assert kr.cadence is not None
    need = kr.cadence.at_least
    slots = cadence_slots(period, kr.cadence, tz)
    span = clock(period, tz, now)
    basis = complete_days(period, span.today)
    counted = [sum(days.get(d, 0.0) for d in s.days) for s in slots]
    ended = [s.end <= now for s in slots]
    done = sum(min(c, need) for c, e in zip(counted, ended, strict=True) if e)
    missed = any(e and c < need for c, e in zip(counted, ended, strict=True))
    still = [(s, c) for s, c, e in zip(slots, counted, ended, strict=True) if not e]
    short = sum(max(0.0, need - c) for _, c in still)
    required = short / span.days_left if span.days_left > 0 else 0.0
    _, end = period_bounds(period, tz)
    if now >= end or not still or missed:
        final = float(not missed and not still)
        value = done + sum(min(c, need) for _, c in still)
        return _certain(final, value, len(basis), "final: a slot has ended short" if missed
                        else "final: every slot has ended")  # fmt: skip
    if len(basis) < MIN_BASIS_DAYS:
        return NoForecast(
            f"needs {MIN_BASIS_DAYS} complete days of data in the period, has {len(basis)}"
        )
    rate = estimate([days.get(d, 0.0) for d in basis], [d.weekday() for d in basis], "counts",
                    (period.end - period.start).days + 1)  # fmt: skip
    order = {span.today: 0, **{d: i + 1 for i, d in enumerate(span.ahead)}}
    ahead_days = [span.today, *span.ahead]
    means = day_means(rate, [d.weekday() for d in ahead_days],
                      [span.today_left, *([1.0] * len(span.ahead))])  # fmt: skip
    slot_means = np.array([sum(means[order[d]] for d in s.days if d in order) for s, _ in still])
    short_by = np.array([max(0.0, need - c) for _, c in still])
    already = sum(min(c, need) for _, c in still)
    spread = ahead(rate, [d.weekday() for d in ahead_days],
                   [span.today_left, *([1.0] * len(span.ahead))]).relative_level_variance  # fmt: skip
    # The dispersion estimate scatters around 1 for Poisson days (by about sqrt(2 / dof));
    # a product over many slots turns an excess of noise into a much lower chance, so only
    # the excess beyond that scatter counts.
    dispersion = max(1.0, rate.dispersion - math.sqrt(2.0 / max(1, rate.days - 7)))
    probability, mean, variance = _slots(dispersion, spread, slot_means, short_by)
    top = need * len(slots)
    low = done + already
    quantiles = [min(top, max(low, low + mean + z * math.sqrt(variance))) for z in _Z]
    return KeyResultForecast(
        probability=probability,
        p10=quantiles[0],
        p50=quantiles[1],
        p90=quantiles[2],
        required_per_day=required,
        basis_days=len(basis),
        method=describe(rate) + "; slot by slot",
        required_per_slot=float(need),
    )


def _certain(probability: float, value: float, basis: int, method: str) -> KeyResultForecast:
    return KeyResultForecast(probability, value, value, value, 0.0, basis, method)


def _slots(
    dispersion: float, spread: float, means: np.ndarray, short_by: np.ndarray
) -> tuple[float, float, float]:
    """P(every open slot gets its missing events), and the mean and variance of the events
    they add towards the value (each slot's capped at what it misses), over the level's
    spread."""
    top = int(short_by.max())
    if top == 0:  # every open slot has its events already
        return 1.0, 0.0, 0.0
    levels = _level_points(spread)
    ks = np.arange(1, top + 1, dtype=float)  # P(X >= k) for k = 1..top
    lam = levels[:, None, None] * means[None, :, None]  # (levels, slots, 1)
    if dispersion > 1.0:
        r = np.maximum(lam, 1e-12) / (dispersion - 1.0)
        at_least = 1.0 - betainc(r, ks[None, None, :], 1.0 / dispersion)
    else:
        at_least = gammainc(ks[None, None, :], np.maximum(lam, 1e-300))
    at_least = np.where(lam > 0, at_least, 0.0)
    wanted = ks[None, None, :] <= short_by[None, :, None]
    sf = np.where(wanted, at_least, 0.0)  # (levels, slots, k)
    idx = np.maximum(short_by.astype(int) - 1, 0)
    met = np.where(short_by[None, :] > 0,
                   np.take_along_axis(at_least, np.broadcast_to(idx[None, :, None], (len(levels), len(idx), 1)), 2)[:, :, 0], 1.0)  # fmt: skip
    all_met = np.prod(met, axis=1)
    first = sf.sum(axis=2)  # E[min(X, short)] per level and slot
    second = (sf * (2 * ks[None, None, :] - 1)).sum(axis=2)
    means_l = first.sum(axis=1)
    vars_l = (second - first**2).sum(axis=1)
    mean = float(means_l.mean())
    variance = float((vars_l + means_l**2).mean() - mean**2)
    return float(all_met.mean()), mean, max(0.0, variance)


def _level_points(level_variance: float) -> np.ndarray:
    """Nine equal-weight points of the overall level's spread (a gamma of mean 1)."""
    if level_variance <= 0:
        return np.ones(1)
    shape = 1.0 / level_variance
    qs = (np.arange(LEVEL_POINTS) + 0.5) / LEVEL_POINTS
    return np.asarray(gammaincinv(shape, qs) / shape)
