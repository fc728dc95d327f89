"""Calibration of the forecast by simulation: key results drawn from five families of daily
data, each asked for a forecast at a random instant of its period, then judged on how its
period really ended. The forecast called is production's (`okrflow.domain.forecast`).

`python -m tests.unit.domain.forecast_sim [--cases N] [--seed S]` prints the table."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from okrflow.domain.forecast import KeyResultForecast, forecast_key_result
from okrflow.domain.forecast_cadence import forecast_cadence
from okrflow.domain.model import Cadence, KeyResult, Period, SimpleMetric

TZ = "UTC"
START = date(2026, 1, 5)  # a Monday
FAMILIES = ("poisson_weekday", "negative_binomial", "closed_sundays", "cadence", "drift")


@dataclass(frozen=True)
class Case:
    probability: float
    linear: float  # the linear projection's verdict: 1 if projected >= target, else 0
    hit: bool


def _shape(rng: np.random.Generator) -> np.ndarray:
    base = np.array([0.9, 1.0, 1.0, 1.05, 1.2, 1.6, 0.6])
    return base * rng.uniform(0.7, 1.3, 7)


def _daily_means(family: str, rng: np.random.Generator, length: int) -> np.ndarray:
    weekdays = np.array([(START + timedelta(days=i)).weekday() for i in range(length)])
    level = rng.uniform(0.5, 25.0)
    shape = _shape(rng)
    if family == "closed_sundays":
        shape[6] = 0.0
    if family == "cadence":
        shape[5:] = 0.0
    means = level * shape[weekdays]
    if family == "drift":
        slope = rng.uniform(-0.5, 0.5)
        means = means * np.maximum(0.05, 1.0 + slope * (np.arange(length) / length - 0.5))
    return np.asarray(means)


def _draw(family: str, rng: np.random.Generator, means: np.ndarray) -> np.ndarray:
    if family in ("negative_binomial", "closed_sundays", "drift"):
        phi = rng.uniform(1.5, 5.0)
        lam = rng.gamma(np.maximum(means, 1e-12) / (phi - 1.0), phi - 1.0)
        return np.asarray(rng.poisson(np.where(means > 0, lam, 0.0)))
    return np.asarray(rng.poisson(means))


def one_case(family: str, rng: np.random.Generator) -> Case | None:
    length = int(rng.integers(28, 120))
    period = Period(START, START + timedelta(days=length - 1))
    means = _daily_means(family, rng, length)
    counts = _draw(family, rng, means)
    day = int(rng.integers(7, length))  # today: days before it are complete
    gone = float(rng.uniform(0.0, 1.0))  # the share of today already past
    today_so_far = int(rng.binomial(counts[day], gone))
    now = datetime.combine(START + timedelta(days=day), datetime.min.time(), UTC)
    now += timedelta(seconds=gone * 86_400)
    seen = {START + timedelta(days=i): float(counts[i]) for i in range(day)}
    seen[START + timedelta(days=day)] = float(today_so_far)
    metric = SimpleMetric(event="order.created", aggregate="count")
    if family == "cadence":
        return _cadence_case(rng, period, now, means, counts, seen, metric)
    expected = float(means.sum())
    target = max(1.0, round(expected * float(rng.uniform(0.8, 1.2))))
    kr = KeyResult(key="kr", title="kr", metric=metric, target=target)
    value = float(sum(seen.values()))
    result = forecast_key_result(kr, period, TZ, now, value, seen)
    if not isinstance(result, KeyResultForecast):
        return None
    elapsed = (day + gone) / length
    projected = value / elapsed
    return Case(result.probability, float(projected >= target), bool(counts.sum() >= target))


def _cadence_case(
    rng: np.random.Generator,
    period: Period,
    now: datetime,
    means: np.ndarray,
    counts: np.ndarray,
    seen: dict[date, float],
    metric: SimpleMetric,
) -> Case | None:
    slot_days = [i for i in range(len(counts)) if (START + timedelta(days=i)).weekday() < 5]
    typical = float(np.median(means[slot_days]))
    at_least = max(1, round(typical * float(rng.uniform(0.15, 0.5))))
    cadence = Cadence(every="day", at_least=at_least, weekdays=frozenset(range(5)))
    kr = KeyResult(key="kr", title="kr", metric=metric, cadence=cadence)
    result = forecast_cadence(kr, period, TZ, now, seen)
    if not isinstance(result, KeyResultForecast):
        return None
    met = all(counts[i] >= at_least for i in slot_days)
    ended = [i for i in slot_days if START + timedelta(days=i) < now.date()]
    done = sum(min(int(counts[i]), at_least) for i in ended)
    elapsed = len(ended) / len(slot_days)
    projected = done / elapsed if elapsed else 0.0
    return Case(result.probability, float(projected >= at_least * len(slot_days)), met)


def cases(family: str, n: int, seed: int) -> list[Case]:
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    out: list[Case] = []
    for _ in range(n * 2):  # bounded: a case without a forecast is drawn again, at most n times
        case = one_case(family, rng)
        if case is not None:
            out.append(case)
        if len(out) == n:
            break
    return out


@dataclass(frozen=True)
class Reliability:
    family: str
    cases: int
    brier: float
    linear_brier: float
    bins: tuple[tuple[float, float, float, int], ...]  # (low, mean predicted, hit rate, n)

    @property
    def worst_gap(self) -> float:
        gaps = [abs(p - h) for _, p, h, n in self.bins if n >= 100]
        return max(gaps, default=0.0)


def reliability(family: str, found: list[Case]) -> Reliability:
    p = np.array([c.probability for c in found])
    hit = np.array([c.hit for c in found], dtype=float)
    linear = np.array([c.linear for c in found])
    bins = []
    for low in np.arange(0.0, 1.0, 0.1):
        inside = (p >= low) & ((p < low + 0.1) | (low >= 0.9))
        if inside.any():
            bins.append((float(low), float(p[inside].mean()), float(hit[inside].mean()),
                         int(inside.sum())))  # fmt: skip
    return Reliability(
        family=family,
        cases=len(found),
        brier=float(np.mean((p - hit) ** 2)),
        linear_brier=float(np.mean((linear - hit) ** 2)),
        bins=tuple(bins),
    )


def table(results: list[Reliability], out: Callable[[str], None] = print) -> None:
    out(f"{'family':<18} {'cases':>6} {'Brier':>7} {'linear':>7} {'worst bin gap':>14}  bins")
    for r in results:
        shown = " ".join(f"{p:.2f}/{h:.2f}({n})" for _, p, h, n in r.bins if n >= 100)
        out(f"{r.family:<18} {r.cases:>6} {r.brier:>7.4f} {r.linear_brier:>7.4f} "
            f"{r.worst_gap:>14.3f}  {shown}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--family", choices=FAMILIES, action="append")
    args = parser.parse_args()
    table([reliability(f, cases(f, args.cases, args.seed)) for f in args.family or FAMILIES])


if __name__ == "__main__":
    main()
