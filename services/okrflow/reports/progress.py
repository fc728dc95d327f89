"""Progress of every objective and key result, from the database, judged at an instant."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from okrflow.domain.progress import KeyResultProgress, plan_progress
from okrflow.plans.stored import load_active_plans
from okrflow.store.counters import read_series_states


def _number(x: float) -> float | int | None:
    """A JSON number; None (null) for a value JSON cannot hold (infinite or NaN)."""
    if not math.isfinite(x):
        return None
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else round(x, 9)


def _ratio(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def _key_result(kr: Any, p: KeyResultProgress) -> dict[str, Any]:
    return {
        "key": p.key,
        "title": kr.title,
        "value": _number(p.value),
        "baseline": _number(p.baseline),
        "target": _number(p.target),
        "progress": _ratio(p.progress),
        "expected": _ratio(p.expected),
        "status": p.status,
        "has_value": p.has_value,
        "last_event_at": p.last_event_at.isoformat() if p.last_event_at else None,
    }


def progress_report(conn: Connection, at: datetime, shop: str | None = None) -> dict[str, Any]:
    """The JSON document `okrflow progress --format json` prints (shape in the README)."""
    shops = []
    for active in load_active_plans(conn, shop):
        plan = active.plan
        states_by_id = read_series_states(conn, active.key_result_ids.values())
        states = {
            pair: states_by_id.get(kr_id, {}) for pair, kr_id in active.key_result_ids.items()
        }
        results = plan_progress(plan, states, at)
        objectives = []
        for objective in plan.objectives:
            r = results[objective.key]
            objectives.append({
                "key": objective.key,
                "title": objective.title,
                "owner": objective.owner,
                "level": objective.level,
                "parent": objective.parent,
                "period": {"start": objective.period.start.isoformat(), "end": objective.period.end.isoformat()},
                "progress": _ratio(r.progress),
                "expected": _ratio(r.expected),
                "status": r.status,
                "key_results": [
                    _key_result(kr, p) for kr, p in zip(objective.key_results, r.key_results, strict=True)
                ],
            })  # fmt: skip
        shops.append({"shop": plan.shop, "timezone": plan.timezone, "objectives": objectives})
    return {"at": at.isoformat(), "shops": shops}
