"""A shop's plan in force: the domain plan and the database id of each key result."""

from __future__ import annotations

from dataclasses import dataclass

from okrflow.domain.model import Plan


@dataclass(frozen=True, eq=False)  # identity: a loaded plan is one object, cached by it
class ActivePlan:
    """A shop's plan in force, with the database id of each key result."""

    plan: Plan
    key_result_ids: dict[tuple[str, str], int]  # (objective key, key-result key) -> id
