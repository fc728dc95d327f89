"""The forecast families of docs/metrics.md: every key result's and objective's forecast
(`domain.forecast_plan`) as of one instant, as Prometheus sample lines.

They are computed in the refresh, never at a scrape: a forecast costs up to about a
millisecond per key result (a year-long period; docs/performance.md), and a scrape has
50 ms for all of them. An outcome that is no forecast (`NoForecast`) has no sample.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from okrflow.domain.forecast import KeyResultForecast
from okrflow.domain.forecast_objective import ObjectiveForecast
from okrflow.domain.forecast_plan import PlanForecast, forecast_plan
from okrflow.domain.model import Objective, Plan
from okrflow.domain.progress import KeyResultState, ObjectiveMeasure
from okrflow.exporter.exposition import number
from okrflow.exporter.plan_labels import PlanLabels

KEY_RESULT_PROBABILITY = "okr_key_result_forecast_probability"
KEY_RESULT_VALUE = "okr_key_result_forecast_value"
REQUIRED_PER_DAY = "okr_key_result_required_per_day"
BASIS_DAYS = "okr_key_result_forecast_basis_days"
OBJECTIVE_PROBABILITY = "okr_objective_forecast_probability"
FORECAST_FAMILIES = (
    KEY_RESULT_PROBABILITY, KEY_RESULT_VALUE, REQUIRED_PER_DAY, BASIS_DAYS, OBJECTIVE_PROBABILITY,
)  # fmt: skip
# The `quantile` label of okr_key_result_forecast_value, beside each label set's closing brace.
_QUANTILES = (',quantile="0.1"}', ',quantile="0.5"}', ',quantile="0.9"}')
# A tree's forecasts are computed again once they are this old even when nothing new was
# counted: they move with the clock (fewer days left), not only with what is counted.
FORECAST_MAX_AGE_SECONDS = 60.0
# A refresh forecasts until it has lasted this long, its read and render included, and for
# at least the minimum: the trees still due keep the forecasts of an earlier refresh and go
# first in the next one (a year-long period costs up to about a millisecond a key result:
# 5,000 of them take more than a refresh may; docs/performance.md).
FORECAST_REFRESH_SECONDS = 0.8
FORECAST_MIN_SECONDS = 0.1


@dataclass(frozen=True)
class PlanInputs:
    """What one plan's forecasts are computed from, kept with its rendered snapshot so that
    they can be computed again at a later instant without reading or measuring again."""

    plan: Plan
    labels: PlanLabels
    measures: Mapping[str, ObjectiveMeasure]  # measure_plan's
    states: Mapping[tuple[str, str], KeyResultState]


def objective_trees(plan: Plan) -> list[Plan]:
    """The plan cut into one plan per top-level objective and all its descendants, each in
    the plan's order. An objective's forecast stands on its own key results and its
    children's forecasts only, so `forecast_plan` over each tree answers as over the whole
    plan, and the refresh can let a scrape go first between trees."""
    known = {o.key for o in plan.objectives}
    children: dict[str, list[str]] = {}
    for o in plan.objectives:
        if o.parent is not None:
            children.setdefault(o.parent, []).append(o.key)
    trees = []
    for root in plan.objectives:
        if root.parent is not None and root.parent in known:
            continue
        members, todo = set(), [root.key]
        while todo:
            key = todo.pop()
            if key not in members:
                members.add(key)
                todo += children.get(key, ())
        objectives = tuple(o for o in plan.objectives if o.key in members)
        trees.append(Plan(plan.shop, plan.timezone, objectives))
    return trees


@dataclass(frozen=True)
class _TreeForecast:
    tree: Plan  # the definitions it was computed for
    source: float  # the `taken_at` of the snapshot it was computed from
    at: float  # the instant it is as of (unix time)
    lines: dict[str, list[str]]  # family -> sample lines


class ForecastBook:
    """Every objective tree's forecast lines, kept from refresh to refresh (the refresh
    thread's alone).

    A tree is due when its forecast is from an older snapshot, older than `max_age`, or
    missing (a new or changed plan). `update` computes due trees, the longest due first,
    until `budget` seconds have passed since the refresh started, and for at least
    `minimum` seconds (and one tree); the others keep their earlier forecast (a new plan's
    trees have none until their turn).
    """

    def __init__(
        self,
        budget: float = FORECAST_REFRESH_SECONDS,
        minimum: float = FORECAST_MIN_SECONDS,
        max_age: float = FORECAST_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.budget, self.minimum, self.max_age, self._clock = budget, minimum, max_age, clock
        self._trees: dict[tuple[str, str], _TreeForecast] = {}  # (shop, root), plan order
        self._lines: dict[str, bytes] = {name: b"" for name in FORECAST_FAMILIES}

    def update(
        self,
        inputs: Sequence[PlanInputs],
        source: float,
        now: float,
        checkpoint: Callable[[], None] = lambda: None,
        started: float | None = None,
    ) -> bool:
        """Forecast the due trees of the snapshot `source` (its `taken_at`) as of `now`,
        within the budget counted from `started` (the refresh's start on the book's clock,
        `time.perf_counter`; default: now); True when `lines()` changed. Calls `checkpoint`
        between trees so a concurrent scrape can go first."""
        begun = self._clock()
        stop = max((begun if started is None else started) + self.budget, begun + self.minimum)
        trees: dict[tuple[str, str], _TreeForecast | None] = {}
        due: list[tuple[float, tuple[str, str], PlanInputs, Plan]] = []
        for plan_inputs in inputs:
            for tree in objective_trees(plan_inputs.plan):
                key = (tree.shop, tree.objectives[0].key)
                old = self._trees.get(key)
                if old is not None and old.tree != tree:
                    old = None  # redefined: its lines may name what is no more
                trees[key] = old
                if old is None or old.source != source or now - old.at >= self.max_age:
                    due.append((-math.inf if old is None else old.at, key, plan_inputs, tree))
        if not due and trees.keys() == self._trees.keys():
            return False
        at = datetime.fromtimestamp(now, UTC)
        for done, (_, key, plan_inputs, tree) in enumerate(sorted(due, key=lambda d: d[0])):
            if done and self._clock() > stop:  # at least one: progress
                break
            checkpoint()
            found = forecast_plan(tree, plan_inputs.measures, plan_inputs.states, at)
            lines: dict[str, list[str]] = {name: [] for name in FORECAST_FAMILIES}
            for o in tree.objectives:
                _objective_lines(lines, plan_inputs.labels, o, found)
            trees[key] = _TreeForecast(tree, source, now, lines)
        self._trees = {key: t for key, t in trees.items() if t is not None}
        self._lines = {
            name: "".join(line for t in self._trees.values() for line in t.lines[name]).encode()
            for name in FORECAST_FAMILIES
        }
        return True

    def lines(self) -> dict[str, bytes]:
        """Each forecast family's sample lines, encoded, in plan order."""
        return self._lines


def _objective_lines(
    lines: dict[str, list[str]], cached: PlanLabels, o: Objective, found: PlanForecast
) -> None:
    outcome = found.objectives[o.key]
    if isinstance(outcome, ObjectiveForecast):
        ol = cached.objectives[o.key].labels
        lines[OBJECTIVE_PROBABILITY].append(
            f"{OBJECTIVE_PROBABILITY}{ol} {number(outcome.probability)}\n"
        )
    for kr in o.key_results:
        f = found.key_results[o.key, kr.key]
        if not isinstance(f, KeyResultForecast):
            continue
        kl = cached.key_results[o.key, kr.key].labels
        lines[KEY_RESULT_PROBABILITY].append(
            f"{KEY_RESULT_PROBABILITY}{kl} {number(f.probability)}\n"
        )
        lines[KEY_RESULT_VALUE] += (
            f"{KEY_RESULT_VALUE}{kl[:-1]}{q} {number(v)}\n"
            for q, v in zip(_QUANTILES, (f.p10, f.p50, f.p90), strict=True)
        )
        lines[REQUIRED_PER_DAY].append(f"{REQUIRED_PER_DAY}{kl} {number(f.required_per_day)}\n")
        lines[BASIS_DAYS].append(f"{BASIS_DAYS}{kl} {number(f.basis_days)}\n")
