"""The label strings and pace rules of a plan's samples: they depend on the plan only, so
they are built once per loaded plan (not once per snapshot) and kept while the plan is."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from okrflow.domain.model import STATUSES
from okrflow.domain.pace import PaceRule, key_result_pace, objective_pace
from okrflow.domain.periods import period_bounds
from okrflow.domain.plans import ActivePlan
from okrflow.exporter.exposition import labels, number, status_blocks


@dataclass(frozen=True)
class ObjectiveLabels:
    labels: str
    static: str  # okr_objective_info and the period bounds: depend on the plan only
    status: dict[str, bytes]
    rule: PaceRule
    period_start: str  # the okr_period_start_timestamp_seconds line
    period_end: str  # the okr_period_end_timestamp_seconds line


@dataclass(frozen=True)
class KeyResultLabels:
    labels: str
    status: dict[str, bytes]
    rule: PaceRule


@dataclass(frozen=True)
class PlanLabels:
    objectives: dict[str, ObjectiveLabels]  # objective key ->
    key_results: dict[tuple[str, str], KeyResultLabels]  # (objective, key result) ->


_plan_labels: weakref.WeakKeyDictionary[ActivePlan, PlanLabels] = weakref.WeakKeyDictionary()
_plan_labels_lock = threading.Lock()


def labels_of(active: ActivePlan) -> PlanLabels:
    """The plan's labels, built on its first snapshot and cached while the plan lives."""
    with _plan_labels_lock:
        cached = _plan_labels.get(active)
    if cached is not None:
        return cached
    built = _build(active)
    with _plan_labels_lock:
        _plan_labels[active] = built
    return built


def _build(active: ActivePlan) -> PlanLabels:
    plan, shop = active.plan, active.plan.shop
    objectives: dict[str, ObjectiveLabels] = {}
    key_results: dict[tuple[str, str], KeyResultLabels] = {}
    for o in plan.objectives:
        ol = labels(shop=shop, objective=o.key)
        info = labels(
            shop=shop,
            objective=o.key,
            title=o.title,
            owner=o.owner,
            level=o.level,
            parent=o.parent or "",
        )
        start, end = period_bounds(o.period, plan.timezone)
        objectives[o.key] = ObjectiveLabels(
            ol,
            f"okr_objective_info{info} 1.0\n",
            status_blocks(
                "okr_objective_status",
                [labels(shop=shop, objective=o.key, status=st) for st in STATUSES],
            ),
            objective_pace(o, plan.timezone),
            f"okr_period_start_timestamp_seconds{ol} {number(start.timestamp())}\n",
            f"okr_period_end_timestamp_seconds{ol} {number(end.timestamp())}\n",
        )
        for kr in o.key_results:
            key_results[o.key, kr.key] = KeyResultLabels(
                labels(shop=shop, objective=o.key, key_result=kr.key),
                status_blocks(
                    "okr_key_result_status",
                    [
                        labels(shop=shop, objective=o.key, key_result=kr.key, status=st)
                        for st in STATUSES
                    ],
                ),
                key_result_pace(kr, o.period, plan.timezone, o.thresholds),
            )
    return PlanLabels(objectives, key_results)
