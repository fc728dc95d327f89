"""Numbers as the reports print them in JSON (`progress`, `history`, the pages' twins), and
the figures of one objective, key result or KPI that `progress` and `history` share.

Strict JSON: a value JSON cannot hold (infinite or NaN) becomes null, never `Infinity`.
The figures hold the values as printed (rounded, None for none), so a table, a page and the
JSON show the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from okrflow.domain.kpis import KpiProgress
from okrflow.domain.model import Status
from okrflow.domain.progress import KeyResultProgress, ObjectiveProgress
from okrflow.jsontypes import JsonObject

Number: TypeAlias = "float | int | None"


def number(x: float) -> Number:
    """A JSON number; None (null) for a value JSON cannot hold (infinite or NaN). Whole
    values print as integers; others keep 9 decimals."""
    if not math.isfinite(x):
        return None
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else round(x, 9)


def ratio(x: float) -> float | None:
    """A share (progress, expected pace) to 6 decimals; None for infinite or NaN."""
    return round(x, 6) if math.isfinite(x) else None


@dataclass(frozen=True)
class KeyResultFigures:
    """A key result's numbers at an instant. While its baseline waits for data not measured
    yet, it has no pace or status (`expected` and `status` are None; its backfill says why)."""

    value: Number
    baseline: Number
    target: Number
    progress: float | None
    expected: float | None
    status: Status | None
    has_value: bool
    last_event_at: datetime | None

    @classmethod
    def of(cls, p: KeyResultProgress) -> KeyResultFigures:
        return cls(
            value=number(p.value),
            baseline=number(p.baseline),
            target=number(p.target),
            progress=ratio(p.progress),
            expected=None if p.waiting else ratio(p.expected),
            status=None if p.waiting else p.status,
            has_value=p.has_value,
            last_event_at=p.last_event_at,
        )

    def to_json(self) -> JsonObject:
        return {
            "value": self.value,
            "baseline": self.baseline,
            "target": self.target,
            "progress": self.progress,
            "expected": self.expected,
            "status": self.status,
            "has_value": self.has_value,
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
        }


@dataclass(frozen=True)
class ObjectiveFigures:
    """An objective's progress, expected pace and status at an instant."""

    progress: float | None
    expected: float | None
    status: Status

    @classmethod
    def of(cls, r: ObjectiveProgress) -> ObjectiveFigures:
        return cls(ratio(r.progress), ratio(r.expected), r.status)

    def to_json(self) -> JsonObject:
        return {"progress": self.progress, "expected": self.expected, "status": self.status}


@dataclass(frozen=True)
class KpiFigures:
    """A KPI's value over its window (None: no value in it) and its health (None: no band,
    or no value)."""

    value: Number
    has_value: bool
    healthy: bool | None

    @classmethod
    def of(cls, p: KpiProgress) -> KpiFigures:
        value = None if p.value is None else number(p.value)
        return cls(value, p.has_value, p.healthy)

    def to_json(self) -> JsonObject:
        return {"value": self.value, "has_value": self.has_value, "healthy": self.healthy}
