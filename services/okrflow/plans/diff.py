"""What `okrflow apply` would change: the plan in the file against the plan in force. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # a row type only: the database stack loads once the files are good
    from okrflow.store.plans import StoredPlan

Action = Literal["added", "changed", "retired"]


@dataclass(frozen=True)
class Change:
    action: Action
    what: str  # "objective more-clients", "key result more-clients/new-clients", "time zone"
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.action:8} {self.what}" + (f" ({self.detail})" if self.detail else "")


def objective_definition(objective: dict[str, Any]) -> dict[str, Any]:
    """An objective's stored definition: everything but its key results."""
    return {k: v for k, v in objective.items() if k != "key_results"}


def counting_fingerprint(key_result: dict[str, Any], timezone: str) -> str:
    """What decides which events a key result counts: its metric and the shop's time zone.

    Counters survive any change that keeps this (title, target, weight, baseline, period...).
    """
    return json.dumps({"metric": key_result["metric"], "timezone": timezone}, sort_keys=True)


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def diff_plan(source: dict[str, Any], stored: StoredPlan) -> list[Change]:
    """Changes from `stored` to the schema-valid plan data `source`, in file order."""
    tz = source["timezone"]
    changes: list[Change] = []
    if stored.timezone is not None and stored.timezone != tz:
        changes.append(Change("changed", "time zone", f"{stored.timezone} -> {tz}"))
    wanted_krs: set[tuple[str, str]] = set()
    for objective in source["objectives"]:
        key = objective["key"]
        definition = objective_definition(objective)
        old = stored.objectives.get(key)
        if old is None:
            changes.append(Change("added", f"objective {key}"))
        elif old != definition:
            changes.append(
                Change("changed", f"objective {key}", ", ".join(_changed_fields(old, definition)))
            )
        for kr in objective.get("key_results", []):
            wanted_krs.add((key, kr["key"]))
            current = stored.key_results.get((key, kr["key"]))
            name = f"key result {key}/{kr['key']}"
            if current is None:
                changes.append(Change("added", name))
            elif current.counting != counting_fingerprint(kr, tz):
                changes.append(
                    Change("changed", name, "metric or time zone changed: counters restart at zero")
                )
            elif current.definition != kr:
                changes.append(
                    Change("changed", name, ", ".join(_changed_fields(current.definition, kr)))
                )
    wanted_objectives = {o["key"] for o in source["objectives"]}
    for key in stored.objectives:
        if key not in wanted_objectives:
            changes.append(Change("retired", f"objective {key}"))
    for pair in stored.key_results:
        if pair not in wanted_krs:
            changes.append(Change("retired", f"key result {pair[0]}/{pair[1]}"))
    return changes
