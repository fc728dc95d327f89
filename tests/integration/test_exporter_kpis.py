"""The exporter's KPIs on real SQLite and PostgreSQL: a snapshot holds each KPI over the
window ending on the shop's local day, and a local midnight alone (nothing written) makes
the next refresh read a new snapshot whose windows moved, while the UTC date has not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, update

from okrflow.exporter.render import OkrRenderer
from okrflow.exporter.snapshot import SnapshotReader
from okrflow.plans.apply import apply_files
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.store.tables import backfill_jobs, key_results, kpi_distinct_days, kr_day_totals

ROME = ZoneInfo("Europe/Rome")
DAY = date(2026, 3, 28)  # Rome's clocks go forward the night after
PLAN = """\
shop: salone-bella
timezone: Europe/Rome
objectives:
  - key: growth
    title: Growth
    owner: marketing
    period: {start: 2026-01-01, end: 2026-06-30}
    key_results:
      - {key: orders, metric: {event: order.placed, aggregate: count}, target: 500}
kpis:
  - key: orders-today
    title: Orders today
    metric: {event: order.placed, aggregate: count}
    window: 1d
    healthy: {above: 2}
  - key: orders-week
    metric: {event: order.placed, aggregate: count}
    window: 7d
  - key: clients-week
    metric: {event: order.placed, aggregate: count_distinct, field: data.customer_id}
    window: 7d
"""
# Orders per local day: one week before DAY (outside a 7-day window ending DAY), DAY, and
# the day after.
ORDERS = {DAY - timedelta(days=7): 10, DAY: 3, DAY + timedelta(days=1): 1}
# Their clients: "a" a week before and on DAY, "b" on DAY, "c" the day after.
CLIENTS = [(DAY - timedelta(days=7), "a"), (DAY, "a"), (DAY, "b"), (DAY + timedelta(days=1), "c")]
COUNTS = ("orders-today", "orders-week")


def _rome(day: date, hour: int, minute: int, second: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ROME).timestamp()


class Databases(NamedTuple):
    reader: Engine  # the exporter's
    writer: Engine  # the worker's kind
    kpi_ids: dict[str, int]


@pytest.fixture
def databases(database_url: str, tmp_path: Path) -> Iterator[Databases]:
    """The exporter's engine on a database holding the plan and the KPIs' day buckets."""
    writer = make_engine(database_url, writer=True)
    ensure_schema(writer)
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN)
    apply_files(writer, [plan], datetime(2026, 3, 1, tzinfo=UTC))
    reader = make_engine(database_url)
    first = SnapshotReader(reader)(0.0)
    assert first is not None
    (active,) = first.plans
    assert set(active.kpi_ids) == {*COUNTS, "clients-week"}
    with writer.begin() as conn:
        conn.execute(insert(kr_day_totals), [
            {"key_result_id": active.kpi_ids[k], "part": "value", "day": day, "events": n,
             "total": float(n)}
            for k in COUNTS for day, n in ORDERS.items()
        ])  # fmt: skip
        conn.execute(insert(kpi_distinct_days), [
            {"key_result_id": active.kpi_ids["clients-week"], "part": "value", "day": day,
             "value": client}
            for day, client in CLIENTS
        ])  # fmt: skip
    yield Databases(reader, writer, active.kpi_ids)
    writer.dispose()
    reader.dispose()


def _kpi_samples(text: str) -> dict[str, str]:
    """`okr_kpi_value|healthy{...kpi="k"}` -> its value, as rendered."""
    out = {}
    for line in text.splitlines():
        if line.startswith(("okr_kpi_value{", "okr_kpi_healthy{")):
            series, value = line.rsplit(" ", 1)
            name, labels = series.split("{", 1)
            kpi = labels.split('kpi="', 1)[1].split('"', 1)[0]
            out[f"{name} {kpi}"] = value
    return out


def test_kpi_windows_move_at_the_local_midnight(databases: Databases) -> None:
    read = SnapshotReader(databases.reader)
    evening = _rome(DAY, 23, 59)
    snapshot = read(evening)
    assert snapshot is not None
    (today, week, clients) = snapshot.kpis["salone-bella"]
    assert (today.key, today.value, today.healthy) == ("orders-today", 3, True)
    assert (week.key, week.value, week.healthy) == ("orders-week", 3, None)
    assert (clients.key, clients.value) == ("clients-week", 2)
    assert _kpi_samples(OkrRenderer(snapshot).render()) == {
        "okr_kpi_value orders-today": "3.0",
        "okr_kpi_healthy orders-today": "1.0",
        "okr_kpi_value orders-week": "3.0",
        "okr_kpi_value clients-week": "2.0",
    }
    # Nothing written, same local day: nothing to read.
    assert read(_rome(DAY, 23, 59, 30)) is None
    # Past the local midnight, still DAY in UTC: the windows end on the next day.
    after_midnight = _rome(DAY + timedelta(days=1), 0, 0, 30)
    assert datetime.fromtimestamp(after_midnight, UTC).date() == DAY
    moved = read(after_midnight)
    assert moved is not None
    assert _kpi_samples(OkrRenderer(moved).render()) == {
        "okr_kpi_value orders-today": "1.0",
        "okr_kpi_healthy orders-today": "0.0",
        "okr_kpi_value orders-week": "4.0",
        "okr_kpi_value clients-week": "3.0",
    }
    assert read(after_midnight + 60) is None


def test_a_kpi_with_a_pending_backfill_is_flagged_and_not_judged(databases: Databases) -> None:
    with databases.writer.begin() as conn:
        job = conn.execute(
            insert(backfill_jobs).values(
                shop="salone-bella", revision_id=1, state="pending",
                created_at=datetime(2026, 3, 1, tzinfo=UTC), skipped_events=0, lost_messages=0,
            ).returning(backfill_jobs.c.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            update(key_results)
            .where(key_results.c.id == databases.kpi_ids["orders-today"])
            .values(backfill_job_id=job)
        )
    snapshot = SnapshotReader(databases.reader)(_rome(DAY, 23, 59))
    assert snapshot is not None
    assert [(p.key, p.backfill) for p in snapshot.kpis["salone-bella"]] == [
        ("orders-today", "pending"), ("orders-week", None), ("clients-week", None),
    ]  # fmt: skip
    text = OkrRenderer(snapshot).render()
    assert _kpi_samples(text)["okr_kpi_value orders-today"] == "3.0"
    assert "okr_kpi_healthy orders-today" not in _kpi_samples(text)
    assert 'okr_kpi_backfill{shop="salone-bella",kpi="orders-today"} 1' in text.splitlines()
    assert 'okr_kpi_backfill{shop="salone-bella",kpi="orders-week"} 0' in text.splitlines()
