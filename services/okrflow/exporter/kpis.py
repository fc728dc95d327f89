"""The KPIs a snapshot holds: every shop's KPIs over the windows ending on its local day.

The arithmetic is `domain.kpis.kpi_progress`, the one `okrflow progress` uses (through
`reports.kpis.read_kpi_progress`). That reader reads every stored day of every key result
in force for one plan; the exporter refreshes every shop at once, so here the KPIs' days are
read once for all shops (`store.kpi_windows`), from the earliest day any window needs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from sqlalchemy import Connection

from okrflow.domain.kpis import KpiProgress, kpi_progress, window_of
from okrflow.domain.model import metric_parts
from okrflow.domain.plans import ActivePlan
from okrflow.store.backfill import read_backfill_states
from okrflow.store.kpi_windows import read_kpi_days
from okrflow.store.kpis import read_distinct_counts


def read_kpis(
    conn: Connection,
    plans: Sequence[ActivePlan],
    days: Sequence[date | None],
    checkpoint: Callable[[], None] = lambda: None,
) -> dict[str, tuple[KpiProgress, ...]]:
    """shop -> its KPIs in file order, each over its window ending on the plan's local day
    in `days` (None: the plan has no KPIs), with the state of its backfill."""
    shops = [(a, today) for a, today in zip(plans, days, strict=True) if today is not None]
    if not shops:
        return {}
    since = min(window_of(today, kpi.window_days)[0] for a, today in shops for kpi in a.plan.kpis)
    rows = read_kpi_days(conn, since, checkpoint)
    backfill = read_backfill_states(conn, [i for a, _ in shops for i in a.kpi_ids.values()])
    out: dict[str, tuple[KpiProgress, ...]] = {}
    for active, today in shops:
        checkpoint()
        plan, progress = active.plan, []
        for kpi in plan.kpis:
            kpi_id = active.kpi_ids[kpi.key]
            parts = metric_parts(kpi.metric)
            first, last = window_of(today, kpi.window_days)
            distinct_series = [(kpi_id, p) for p, m in parts if m.aggregate == "count_distinct"]
            distinct = {
                part: n
                for (_, part), n in read_distinct_counts(conn, distinct_series, first, last).items()
            }
            series_days = {p: rows[kpi_id, p] for p, _ in parts if (kpi_id, p) in rows}
            progress.append(kpi_progress(kpi, series_days, distinct, today, plan.timezone,
                                         backfill.get(kpi_id)))  # fmt: skip
        out[plan.shop] = tuple(progress)
    return out
