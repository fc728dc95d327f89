"""The worker forgets a KPI's distinct values of days the events topic no longer holds
(retention plus the longest window), on both databases."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, insert, select

from okrflow.store.engine import make_engine
from okrflow.store.kpis import prune_kpi_distinct_days
from okrflow.store.schema import ensure_schema
from okrflow.store.tables import kpi_distinct_days


def test_rows_of_days_before_the_cutoff_are_deleted(database_url: str) -> None:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    today = date(2026, 11, 26)
    rows = [
        {"key_result_id": 1, "part": "value", "day": today - timedelta(days=n), "value": v}
        for n in (0, 10, 766, 767, 900)
        for v in ('"a"', '"b"')
    ]
    with engine.begin() as conn:
        conn.execute(insert(kpi_distinct_days), rows)
        removed = prune_kpi_distinct_days(conn, today - timedelta(days=766))
    with engine.connect() as conn:
        left = sorted(
            conn.execute(
                select(kpi_distinct_days.c.day, func.count()).group_by(kpi_distinct_days.c.day)
            ).all()
        )
    assert removed == 4
    assert [(d, n) for d, n in left] == [
        (today - timedelta(days=766), 2), (today - timedelta(days=10), 2), (today, 2),
    ]  # fmt: skip
    engine.dispose()
