"""Backfill jobs and cuts written by `apply` (docs/design/history-and-backfill.md 1.2, 1.3,
1.9), on real SQLite and PostgreSQL:

- a key result that is new, or re-metered, whose period has begun gets a job, and the job's
  cut is each partition's applied offset as the activating transaction saw it; a key result
  kept as it was, or whose period starts later, gets none;
- on PostgreSQL, an apply concurrent with a batch in flight waits for it, so the cut
  includes that batch (which counted without the new key result);
- `progress` JSON and table and the exporter's `okr_key_result_backfill` mark the job;
- `offsets reset` fails the unfinished jobs.
"""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine, select, text

from okrflow.exporter.render import OkrRenderer
from okrflow.exporter.snapshot import SnapshotReader
from okrflow.ingest.offsets import PartitionOffsets, reset
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch, write_batch
from okrflow.plans.apply import ApplyResult, apply_files
from okrflow.plans.stored import load_active_plans
from okrflow.reports.progress import progress_report
from okrflow.reports.table import render_progress
from okrflow.store.backfill_jobs import read_job_cuts
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.store.tables import applied_offsets, backfill_jobs
from tests.factories import decode_batch_of

SHOP = "salone-bella"
TOPIC = "okr.events"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
PLAN = """\
shop: salone-bella
timezone: Europe/Rome
objectives:
  - key: spring
    title: Spring
    owner: sales
    period: {start: 2026-02-01, end: 2026-04-30}
    key_results:
      - {key: sales, metric: {event: shop.sale, aggregate: count}, target: 1000}
      - {key: big, metric: {event: shop.sale, aggregate: count}, target: 10}
"""
# Adds a key result, re-meters `big` (a filter), keeps `sales`; adds an objective whose period
# starts after NOW (no backfill: every event of it arrives after the apply).
REVISED = """\
shop: salone-bella
timezone: Europe/Rome
objectives:
  - key: spring
    title: Spring
    owner: sales
    period: {start: 2026-02-01, end: 2026-04-30}
    key_results:
      - {key: sales, metric: {event: shop.sale, aggregate: count}, target: 1000}
      - key: big
        metric: {event: shop.sale, aggregate: count, where: {data.amount: {gte: 50}}}
        target: 10
      - {key: revenue, metric: {event: shop.sale, aggregate: sum, field: data.amount}, target: 9000}
  - key: summer
    title: Summer
    owner: sales
    period: {start: 2026-06-01, end: 2026-08-31}
    key_results:
      - {key: visits, metric: {event: shop.sale, aggregate: count}, target: 100}
"""


def _batch(partition: int, first: int, n: int) -> object:
    messages = []
    for offset in range(first, first + n):
        event = {
            "specversion": "1.0", "id": f"e-{partition}-{offset}", "source": "/pos",
            "type": "shop.sale", "time": "2026-02-20T10:00:00Z", "shop": SHOP,
            "data": {"amount": 10 * offset},
        }  # fmt: skip
        messages.append((partition, offset, json.dumps(event).encode()))
    return decode_batch_of(TOPIC, messages, 100_000)


def _setup(database_url: str, tmp_path: Path) -> tuple[Engine, PlanCache, Path]:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    (tmp_path / "v1.yaml").write_text(PLAN)
    (tmp_path / "v2.yaml").write_text(REVISED)
    apply_files(engine, [tmp_path / "v1.yaml"], NOW)
    plans = PlanCache()
    apply_batch(engine, _batch(0, 0, 5), NOW, plans)  # type: ignore[arg-type]
    apply_batch(engine, _batch(1, 0, 3), NOW, plans)  # type: ignore[arg-type]
    return engine, plans, tmp_path / "v2.yaml"


def _applied(engine: Engine) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(applied_offsets.c.kafka_partition, applied_offsets.c.next_offset).where(
                applied_offsets.c.topic == TOPIC
            )
        )
        return {int(p): int(o) for p, o in rows}


def _backfill_marks(engine: Engine) -> dict[tuple[str, str], object]:
    with engine.connect() as conn:
        report = progress_report(conn, NOW).to_json()
    return {
        (o["key"], kr["key"]): kr["backfill"]
        for shop in report["shops"]
        for o in shop["objectives"]
        for kr in o["key_results"]
    }


def test_apply_records_a_job_and_its_cut_for_begun_new_and_remetered_key_results(
    database_url: str, tmp_path: Path
) -> None:
    engine, plans, revised = _setup(database_url, tmp_path)
    with engine.connect() as conn:
        (before,) = load_active_plans(conn)
    (result,) = apply_files(engine, [revised], NOW)
    assert isinstance(result, ApplyResult) and result.to_backfill == 2
    with engine.connect() as conn:
        (job,) = read_job_cuts(conn, SHOP)
        (after,) = load_active_plans(conn)
        in_job = set(
            conn.execute(
                text("SELECT id FROM key_results WHERE backfill_job_id = :j"), {"j": job.job_id}
            ).scalars()
        )
    assert job.state == "pending" and job.cut == {0: 5, 1: 3} == _applied(engine)
    ids = after.key_result_ids
    assert in_job == {ids["spring", "big"], ids["spring", "revenue"]}
    assert ids["spring", "sales"] == before.key_result_ids["spring", "sales"]  # kept, no job
    assert _backfill_marks(engine) == {
        ("spring", "sales"): None, ("spring", "big"): "pending",
        ("spring", "revenue"): "pending", ("summer", "visits"): None,
    }  # fmt: skip
    # The live worker counts the new key results from the next batch on.
    apply_batch(engine, _batch(0, 5, 2), NOW, plans)  # type: ignore[arg-type]
    with engine.connect() as conn:
        assert read_job_cuts(conn, SHOP)[0].cut == {0: 5, 1: 3}  # the cut does not move

    console = Console(file=io.StringIO(), width=200, color_system=None)
    with engine.connect() as conn:
        render_progress(progress_report(conn, NOW), console)
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    marked = [line for line in lines if "backfilling" in line]
    assert len(marked) == 2 and not any("Sales" in line for line in marked)

    snapshot = SnapshotReader(engine)(0.0)
    assert snapshot is not None
    exposition = OkrRenderer(snapshot).render(NOW)
    gauges = {
        line.split("key_result=")[1].split('"')[1]: line.rsplit(" ", 1)[1]
        for line in exposition.splitlines()
        if line.startswith("okr_key_result_backfill{")
    }
    assert gauges == {"sales": "0", "big": "1", "revenue": "1", "visits": "0"}
    # Nothing below the cut (5 + 3 messages) read yet.
    assert f'okr_backfill_remaining_messages{{shop="{SHOP}"}} 8.0' in exposition.splitlines()

    # A job that finished reads done, and the exporter reads the change (not a cached one).
    with engine.begin() as conn:
        conn.execute(backfill_jobs.update().values(state="done", finished_at=NOW))
    assert _backfill_marks(engine)["spring", "revenue"] == "done"
    snapshot = SnapshotReader(engine)(0.0)
    assert snapshot is not None and not snapshot.backfilling
    assert "okr_backfill_remaining_messages{" not in OkrRenderer(snapshot).render(NOW)


def test_offsets_reset_fails_the_unfinished_jobs(database_url: str, tmp_path: Path) -> None:
    engine, _plans, revised = _setup(database_url, tmp_path)
    apply_files(engine, [revised], NOW)
    reset(engine, TOPIC, [PartitionOffsets(0, 5, 0, 2)], "log-start", {0})
    with engine.connect() as conn:
        state, error = conn.execute(select(backfill_jobs.c.state, backfill_jobs.c.error)).one()
    assert state == "failed" and "offsets reset" in error
    assert _backfill_marks(engine)["spring", "revenue"] == "pending"  # values stay partial


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_apply_concurrent_with_a_batch_cuts_after_that_batch(
    database_url: str, tmp_path: Path
) -> None:
    engine, plans, revised = _setup(database_url, tmp_path)
    in_flight = write_batch(engine, _batch(0, 5, 4), NOW, plans)  # type: ignore[arg-type]
    results: list[ApplyResult] = []
    applier = threading.Thread(target=lambda: results.extend(apply_files(engine, [revised], NOW)))
    try:
        applier.start()
        for _ in range(400):  # bounded: the apply must be seen waiting for the plan clock
            with engine.connect() as conn:
                waiting = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
            if waiting:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the apply did not wait for the batch in flight")
    finally:
        in_flight.commit()
    applier.join(timeout=60)
    assert not applier.is_alive() and results[0].to_backfill == 2
    with engine.connect() as conn:
        (job,) = read_job_cuts(conn, SHOP)
    # The batch committed first counted without the new key results; the cut is after it,
    # so the backfill counts its events and the live worker does not: none lost, none twice.
    assert job.cut == {0: 9, 1: 3}
