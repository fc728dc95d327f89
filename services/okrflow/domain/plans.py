"""A shop's plan in force: the domain plan and the database id of each key result."""

from __future__ import annotations

from dataclasses import dataclass, field

from okrflow.domain.model import Plan


@dataclass(frozen=True, eq=False)  # identity: a loaded plan is one object, cached by it
class ActivePlan:
    """A shop's plan in force, with the database id of each key result and KPI."""

    plan: Plan
    key_result_ids: dict[tuple[str, str], int]  # (objective key, key-result key) -> id
    kpi_ids: dict[str, int] = field(default_factory=dict)  # KPI key -> id (same id space)

    @property
    def measure_ids(self) -> list[int]:
        """Every key result's and KPI's id."""
        return [*self.key_result_ids.values(), *self.kpi_ids.values()]
