"""Warnings about objectives whose period starts before the events topic's retention reaches
back. Pure.

Kafka deletes events older than the topic's retention, so a key result added to such an
objective later cannot be recounted from the events of the period's first days: they may be
gone. The warning never refuses a plan (the counters already kept are not affected).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from okrflow.plans.parse import ParsedPlan, Problem
from okrflow.plans.yamlsource import format_path


def _days(retention: timedelta) -> str:
    return f"{retention / timedelta(days=1):g} day(s)"


def retention_warnings(
    parsed: ParsedPlan, retention: timedelta | None, now: datetime
) -> list[Problem]:
    """One located warning (FILE:LINE: path: warning: ...) per objective whose period starts
    (midnight in the plan's time zone) before `now - retention`; none when unlimited (None)."""
    if retention is None:
        return []
    oldest = now - retention
    zone = ZoneInfo(parsed.plan.timezone)
    warnings = []
    for i, objective in enumerate(parsed.plan.objectives):
        start = objective.period.start
        if datetime.combine(start, time(), zone) >= oldest:
            continue
        path = ("objectives", i, "period", "start")
        kept_since = oldest.astimezone(UTC).date().isoformat()
        message = (
            f"warning: the period starts {start.isoformat()}, before the events topic's "
            f"retention ({_days(retention)}) reaches back (to {kept_since}): events before "
            "then may be gone, so a key result added later cannot be recounted from them"
        )
        warnings.append(Problem(parsed.filename, parsed.line(path), format_path(path), message))
    return warnings
