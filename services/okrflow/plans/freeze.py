"""Freezing baselines measured from data (`baseline: {from: history | previous_period}`,
docs/design/history-and-backfill.md 3.3, docs/formulas.md).

A key result's baseline B is due once its window is over (now >= the period's first local
midnight) and everything that was in the topic when its backfill finished is counted: the
job's scan wrote `freeze_offset` (each partition's log end then) and the live worker's
applied offsets reached them (a key result activated while nothing of the topic was applied
gets a job without a cut: its scan only records the log ends). One idempotent transaction
holding the plan clock (no batch in flight) folds B as `progress --as-of` folds, writes it,
records a plan revision and advances the clock: from that revision on the key result is
built with B, its relative target resolves against it, and the live index drops the
baseline's series, so an event of the window arriving later changes nothing. The worker
runs it every minute, and `apply` after writing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from okrflow.domain.baselines import fold_baseline
from okrflow.domain.model import KeyResult, Objective
from okrflow.domain.periods import period_bounds
from okrflow.plans.stored import load_active_plans
from okrflow.store.baselines import (
    any_waiting,
    finish_jobs_without_waiting,
    insert_measured_revision,
    read_waiting,
    scanned_and_applied,
    scanned_unfinished_jobs,
    write_measured_baseline,
)
from okrflow.store.plan_clock import PlanClockBusy, advance_plan_clock, take_plan_clock
from okrflow.store.series_reads import read_series_rows

logger = logging.getLogger(__name__)

CLOCK_TIMEOUT_SECONDS = 5.0  # a freeze waits this long for batches in flight, then gives up


@dataclass(frozen=True)
class _Due:
    shop: str
    timezone: str
    objective: Objective
    key_result: KeyResult
    key_result_id: int
    job_id: int | None


def freeze_due_baselines(engine: Engine, topic: str, now: datetime) -> list[str]:
    """Freeze every baseline that is due; returns one line per baseline frozen, e.g.
    `measured key result grow/clients: baseline 214 (from history)`. Idempotent."""
    with engine.connect() as conn:  # most calls: nothing is due, no lock taken
        if not _anything_to_do(conn, topic, now):
            return []
    try:
        with engine.begin() as conn:
            take_plan_clock(conn, CLOCK_TIMEOUT_SECONDS)  # no batch in flight until commit
            due = _due(conn, topic, now)
            lines = _freeze(conn, due, now) if due else []
            # Done: every scanned job none of whose key results in force still waits (also
            # one whose waiting key result was retired after its scan finished).
            finish_jobs_without_waiting(conn, scanned_unfinished_jobs(conn), now)
            return lines
    except PlanClockBusy:
        logger.info("baselines not frozen: workers held the plan clock; the next call retries")
        return []


def _anything_to_do(conn: Connection, topic: str, now: datetime) -> bool:
    """Read without a lock: a baseline due, or a scanned job no key result waits for. The
    freeze then takes the plan clock (pausing batches) and decides again under it."""
    if any_waiting(conn) and _due(conn, topic, now):
        return True
    waited_for = set(read_waiting(conn).values())
    return any(job not in waited_for for job in scanned_unfinished_jobs(conn))


def _due(conn: Connection, topic: str, now: datetime) -> list[_Due]:
    waiting = read_waiting(conn)
    if not waiting:
        return []
    ready = scanned_and_applied(conn, {j for j in waiting.values() if j is not None}, topic)
    due = []
    for active in load_active_plans(conn):
        tz = active.plan.timezone
        for objective in active.plan.objectives:
            if now < period_bounds(objective.period, tz)[0]:
                continue  # the window is not over yet
            for kr in objective.key_results:
                kr_id = active.key_result_ids[objective.key, kr.key]
                if kr_id not in waiting or not kr.baseline_waiting:
                    continue
                job = waiting[kr_id]
                if job is None or job in ready:
                    due.append(_Due(active.plan.shop, tz, objective, kr, kr_id, job))
    return due


def _freeze(conn: Connection, due: list[_Due], now: datetime) -> list[str]:
    rows = read_series_rows(conn, [d.key_result_id for d in due])
    lines: list[str] = []
    changes: dict[str, list[dict[str, str]]] = {}
    for d in due:
        parts = {part: r for (kr_id, part), r in rows.items() if kr_id == d.key_result_id}
        folded = fold_baseline(d.key_result, d.objective.period, d.timezone, parts)
        value = 0.0 if folded is None else folded  # a level with no event in the window
        write_measured_baseline(conn, d.key_result_id, value, now)
        what = f"key result {d.objective.key}/{d.key_result.key}"
        detail = f"baseline {value:g} (from {d.key_result.baseline_from})"
        if folded is None:
            detail += ": no value in the window"
        # Printed by `okrflow revisions` as "measured key result o/k: baseline 214 (...)".
        changes.setdefault(d.shop, []).append(
            {"action": "measured", "what": f"{what}: {detail}", "detail": ""}
        )
        lines.append(f"{d.shop}: measured {what}: {detail}")
    revision = max(insert_measured_revision(conn, shop, c, now) for shop, c in changes.items())
    advance_plan_clock(conn, revision)
    for line in lines:
        logger.info("%s", line)
    return lines
