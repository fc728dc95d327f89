"""Progress of every objective and key result, from the database, judged at an instant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from okrflow.domain.history import end_of_day, plan_states_as_of
from okrflow.domain.kpis import KpiProgress
from okrflow.domain.model import Objective, Plan
from okrflow.domain.periods import local_day
from okrflow.domain.progress import KeyResultProgress, ObjectiveProgress, plan_progress
from okrflow.plans.stored import load_active_plans
from okrflow.reports.figures import number, ratio
from okrflow.reports.kpis import kpi_entry, read_kpi_progress
from okrflow.store.backfill import read_backfill_states
from okrflow.store.counters import read_series_rows, read_series_states


def _key_result(
    kr: Any, p: KeyResultProgress, backfill: Mapping[str, str] | None
) -> dict[str, Any]:
    entry = {"key": p.key, "title": kr.title, **key_result_figures(p)}
    if backfill is not None:  # null (none), "pending", "running" (partial values) or "done"
        entry["backfill"] = backfill.get(p.key)
    return entry


def key_result_figures(p: KeyResultProgress) -> dict[str, Any]:
    """A key result's numbers as JSON (`progress` and `history` print the same)."""
    return {
        "value": number(p.value),
        "baseline": number(p.baseline),
        "target": number(p.target),
        "progress": ratio(p.progress),
        # A baseline from data not measured yet: no pace or status (its backfill says why).
        "expected": None if p.waiting else ratio(p.expected),
        "status": None if p.waiting else p.status,
        "has_value": p.has_value,
        "last_event_at": p.last_event_at.isoformat() if p.last_event_at else None,
    }


def objective_figures(r: ObjectiveProgress) -> dict[str, Any]:
    """An objective's numbers as JSON (`progress` and `history` print the same)."""
    return {"progress": ratio(r.progress), "expected": ratio(r.expected), "status": r.status}


def _objective(
    objective: Objective, r: ObjectiveProgress, backfill: Mapping[str, str] | None
) -> dict[str, Any]:
    return {
        "key": objective.key,
        "title": objective.title,
        "owner": objective.owner,
        "level": objective.level,
        "parent": objective.parent,
        "period": {"start": objective.period.start.isoformat(), "end": objective.period.end.isoformat()},
        **objective_figures(r),
        "key_results": [
            _key_result(kr, p, backfill)
            for kr, p in zip(objective.key_results, r.key_results, strict=True)
        ],
    }  # fmt: skip


def shop_entry(
    plan: Plan,
    results: Mapping[str, ObjectiveProgress],
    backfill: Mapping[str, Mapping[str, str]] | None,
    kpis: Sequence[KpiProgress],
    as_of: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One shop of `progress --format json` from its judged objectives, the backfill state
    of its key results (objective -> key result -> state; None: not shown) and its KPIs.
    The exporter's pages print the same from their snapshot."""
    entry: dict[str, Any] = {"shop": plan.shop, "timezone": plan.timezone}
    if as_of is not None:
        entry["as_of"] = as_of
    entry["objectives"] = [
        _objective(o, results[o.key], None if backfill is None else backfill.get(o.key, {}))
        for o in plan.objectives
    ]
    entry["kpis"] = [kpi_entry(p) for p in kpis]
    return entry


def progress_report(
    conn: Connection, at: datetime, shop: str | None = None, as_of: date | None = None
) -> dict[str, Any]:
    """The JSON document `okrflow progress --format json` prints (shape in the README).

    With `as_of` (a local date), each shop's values are those counted from events up to the
    end of that day in the shop's time zone, judged at that instant (`at` is not used), and
    the document carries `as_of`."""
    shops = []
    for active in load_active_plans(conn, shop):
        plan = active.plan
        if as_of is None:
            states_by_id = read_series_states(conn, active.key_result_ids.values())
            states = {
                pair: states_by_id.get(kr_id, {}) for pair, kr_id in active.key_result_ids.items()
            }
            judged_at = at
        else:
            rows = read_series_rows(conn, active.key_result_ids.values())
            states = plan_states_as_of(active, rows, as_of)
            judged_at = end_of_day(as_of, plan.timezone)
        results = plan_progress(plan, states, judged_at)
        as_of_entry = None
        if as_of is not None:
            as_of_entry = {"date": as_of.isoformat(), "instant": judged_at.isoformat()}
        # The backfill state is today's: shown with today's values, not with a past day's
        # (history shows none either).
        backfill: dict[str, dict[str, str]] | None = None
        if as_of is None:
            by_id = read_backfill_states(conn, active.key_result_ids.values())
            backfill = {o.key: {} for o in plan.objectives}
            for (objective_key, kr_key), kr_id in active.key_result_ids.items():
                if kr_id in by_id:
                    backfill[objective_key][kr_key] = by_id[kr_id]
        # KPIs over the window ending today (or on the as-of day), in the shop's time zone.
        today = as_of if as_of is not None else local_day(at, plan.timezone)
        kpis = read_kpi_progress(conn, active, today, as_of is None)
        shops.append(shop_entry(plan, results, backfill, kpis, as_of_entry))
    if as_of is not None:
        return {"at": None, "as_of": as_of.isoformat(), "shops": shops}
    return {"at": at.isoformat(), "shops": shops}
