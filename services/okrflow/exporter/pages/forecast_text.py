"""A forecast in words, as the shop page says it (docs/pages.md, "Forecasts in words").

"likely (72%) to reach 230 by 30 June; needs 1.4 a day": a band of the probability, the
probability itself, the target and the period's last day, and the pace it takes. The
script (static/pages.js, `forecastText`) says the same from the JSON twin when it updates
the page in place; the two are kept equal by tests.
"""

from __future__ import annotations

import math
from datetime import date

from okrflow.domain.forecast import NoForecast
from okrflow.exporter.pages.numbers import NONE, number, percent
from okrflow.reports.figures import Number
from okrflow.reports.forecasts import KeyResultOutlook, ObjectiveOutlook

# The lowest probability of each band, highest first.
BANDS = (
    (0.8, "very likely"),
    (0.6, "likely"),
    (0.4, "as likely as not"),
    (0.2, "unlikely"),
    (0.0, "very unlikely"),
)


def band(probability: float) -> str:
    """The words for a probability: "certain" only for 1 exactly."""
    if probability >= 1.0:
        return "certain"
    return next(words for low, words in BANDS if probability >= low)


def chance(probability: float) -> str:
    """The probability in whole percent, never rounded to a certainty it is not."""
    shown = math.floor(probability * 100 + 0.5)
    if shown == 0 and probability > 0:
        return "<1%"
    if shown == 100 and probability < 1:
        return ">99%"
    return f"{shown}%"


def day_chance(outlook: KeyResultOutlook) -> str:
    """A day's forecast in a table: its probability, or a dash."""
    if isinstance(outlook, NoForecast) or outlook.probability is None:
        return NONE
    return chance(outlook.probability)


def day_text(day: date) -> str:
    """A period's last day as the sentence says it: "30 June"."""
    return f"{day.day} {MONTHS[day.month - 1]}"


MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def key_result_text(outlook: KeyResultOutlook, target: Number, baseline: Number, end: date) -> str:
    """What the shop page says of a key result's forecast (or why there is none)."""
    if isinstance(outlook, NoForecast):
        return f"none ({outlook.reason})"
    p = outlook.probability
    if p is None:
        return "none"
    falling = (
        isinstance(target, int | float)
        and isinstance(baseline, int | float)
        and (target < baseline)
    )
    goal = f"{'come down to' if falling else 'reach'} {number(target)} by {day_text(end)}"
    needs = outlook.required_per_day
    if p == 0 and not needs:
        return f"cannot {goal} any more"
    head = f"{band(p)} ({chance(p)}) to {goal}"
    if not needs:
        return f"{head}; met now"
    if outlook.required_per_slot is not None:
        return f"{head}; needs {number(outlook.required_per_slot)} in every slot left"
    return f"{head}; needs {number(needs)} a day"


def objective_text(outlook: ObjectiveOutlook, end: date) -> str:
    """What the shop page says of an objective's forecast (or why there is none)."""
    if isinstance(outlook, NoForecast):
        return f"none ({outlook.reason})"
    p = outlook.probability
    if p is None:
        return "none"
    median = f"median progress {percent(outlook.p50_progress)}"
    return f"{band(p)} ({chance(p)}) to be fully achieved by {day_text(end)}; {median}"
