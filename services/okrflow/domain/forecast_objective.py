"""An objective's forecast from its key results' and child objectives' (docs/formulas.md,
"Forecast"). Pure.

An objective's progress is the weighted mean of its parts' progress, each clamped to 1
(formulas.md, "Objectives: roll-up"), so it reaches 1 exactly when every part does. Taking
the parts as independent, the chance of that is the product of theirs. The median progress
at the end is given as the weighted mean of the parts' median progress (the median of a
mean is not the mean of medians; for skewed parts the two differ a little). A `maintain` key
result has no forecast of its own; its objective takes it to hold, or stay broken, to the
end as it does now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from okrflow.domain.forecast import KeyResultForecast, NoForecast


@dataclass(frozen=True)
class ObjectiveForecast:
    probability: float
    p50_progress: float


@dataclass(frozen=True)
class Part:
    """One key result or child objective in an objective's roll-up."""

    weight: float
    probability: float
    p50_progress: float  # clamped to [0, 1]


def key_result_part(
    weight: float, baseline: float, target: float, forecast: KeyResultForecast
) -> Part:
    """A key result's part: its probability, and its p50 value as progress towards
    `target` from `baseline` (a cadence's baseline is 0 and its target N x slots)."""
    progress = (forecast.p50 - baseline) / (target - baseline)
    return Part(weight, forecast.probability, min(1.0, max(0.0, progress)))


def maintained_part(weight: float, progress: float) -> Part:
    """A maintain key result's part: it holds to the end as it holds now (progress 1 or 0)."""
    held = 1.0 if progress >= 1.0 else 0.0
    return Part(weight, held, held)


def objective_forecast(
    parts: Sequence[Part | NoForecast],
) -> ObjectiveForecast | NoForecast:
    """The objective's forecast, or why there is none: no part to forecast, or a part
    without a forecast (the first one's reason, which names the part)."""
    for part in parts:
        if isinstance(part, NoForecast):
            return part
    counted = [p for p in parts if isinstance(p, Part)]
    if not counted:
        return NoForecast("no key result or child objective to forecast")
    weights = sum(p.weight for p in counted)
    return ObjectiveForecast(
        probability=math.prod(p.probability for p in counted),
        p50_progress=sum(p.weight * p.p50_progress for p in counted) / weights,
    )
