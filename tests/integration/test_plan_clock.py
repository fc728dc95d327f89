"""The plan clock (docs/design/history-and-backfill.md 1.1) on real databases: an apply never
commits between a batch's reading of the plan revision and that batch's commit.

- A batch transaction in flight holds the clock (PostgreSQL FOR KEY SHARE): an exclusive
  lock cannot be had, and `apply` gives up after its timeout with one line, nothing written.
- Batches share the clock (they block each other only on the counter rows both update).
- A batch that starts while an apply holds the clock waits for it and then counts the
  apply's new key result (on PostgreSQL the test sees it waiting; on SQLite BEGIN IMMEDIATE
  serialises the two), so the new key result misses none of the batch's events.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import BatchResult, apply_batch, write_batch
from okrflow.plans.apply import apply_files, apply_parsed, parse_files
from okrflow.plans.diff import diff_plan
from okrflow.plans.stored import load_active_plans, plan_write
from okrflow.store.engine import make_engine
from okrflow.store.plan_clock import advance_plan_clock, plans_revision, take_plan_clock
from okrflow.store.plans import load_stored_plan, lock_shop, write_plan
from okrflow.store.schema import ensure_schema
from okrflow.store.series_reads import read_series_states
from tests.factories import decode_batch_of

SHOP = "salone-bella"
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
"""
REVISED = PLAN + (
    "      - {key: revenue, metric: {event: shop.sale, aggregate: sum, field: data.amount},"
    " target: 100000}\n"
)


def _batch(first: int, n: int, partition: int = 0) -> object:
    messages = []
    for offset in range(first, first + n):
        event = {
            "specversion": "1.0", "id": f"e-{partition}-{offset}", "source": "/pos",
            "type": "shop.sale", "time": "2026-02-20T10:00:00Z", "shop": SHOP,
            "data": {"amount": 10},
        }  # fmt: skip
        messages.append((partition, offset, json.dumps(event).encode()))
    return decode_batch_of("events", messages, 100_000)


def _setup(database_url: str, tmp_path: Path) -> tuple[Engine, Path]:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    (tmp_path / "v1.yaml").write_text(PLAN)
    (tmp_path / "v2.yaml").write_text(REVISED)
    apply_files(engine, [tmp_path / "v1.yaml"], NOW)
    return engine, tmp_path / "v2.yaml"


def _totals(engine: Engine) -> dict[str, float]:
    with engine.connect() as conn:
        (plan,) = load_active_plans(conn)
        ids = {key: plan.key_result_ids["spring", key] for _, key in plan.key_result_ids}
        states = read_series_states(conn, ids.values())
    return {key: states[kr_id]["value"].total for key, kr_id in ids.items()}


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return int(waiting) > 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_batch_in_flight_holds_the_clock_and_apply_gives_up_after_its_timeout(
    database_url: str, tmp_path: Path
) -> None:
    engine, revised = _setup(database_url, tmp_path)
    plans = PlanCache()
    first = write_batch(engine, _batch(0, 5), NOW, plans)  # type: ignore[arg-type]
    try:
        with engine.connect() as conn, conn.begin():
            # Another batch's share of the clock is granted at once (batches block each other
            # only on the counter rows they both update, never on the clock)...
            assert plans_revision(conn, share_lock=True) == plans.loaded.revision
        with engine.connect() as conn, conn.begin():
            # ...an exclusive lock is not.
            with pytest.raises(DBAPIError) as refused:
                conn.execute(text("SELECT revision FROM plan_clock WHERE id = 1 FOR UPDATE NOWAIT"))
            assert getattr(refused.value.orig, "sqlstate", None) == "55P03"
        with pytest.raises(OperatorError) as busy:
            apply_parsed(engine, parse_files([revised]), NOW, clock_timeout_seconds=0.2)
        assert busy.value.code == ExitCode.FAILED
        assert "mid-batch" in str(busy.value) and "\n" not in str(busy.value)
    finally:
        first.commit()
    assert set(_totals(engine)) == {"sales"}  # nothing of the refused apply was written
    (applied,) = apply_files(engine, [revised], NOW)
    assert applied.revision_id is not None
    with engine.connect() as conn:
        assert plans_revision(conn) == applied.revision_id


def test_a_batch_that_starts_during_an_apply_counts_the_new_key_result(
    database_url: str, tmp_path: Path
) -> None:
    engine, revised = _setup(database_url, tmp_path)
    plans = PlanCache()
    assert apply_batch(engine, _batch(0, 4), NOW, plans).counted == 4  # type: ignore[arg-type]
    ((_, text_, parsed),) = parse_files([revised])
    done: list[BatchResult] = []
    worker = threading.Thread(
        target=lambda: done.append(apply_batch(engine, _batch(4, 6), NOW, plans))  # type: ignore[arg-type]
    )
    with engine.connect() as conn, conn.begin():  # the apply, as apply_parsed writes it
        lock_shop(conn, SHOP)
        take_plan_clock(conn)
        stored = load_stored_plan(conn, SHOP)
        changes = diff_plan(parsed.source, stored)
        revision = write_plan(conn, plan_write(parsed.source, stored, changes, text_), NOW)
        advance_plan_clock(conn, revision)
        worker.start()  # reads the clock while the apply holds it, uncommitted
        if engine.dialect.name == "postgresql":
            for _ in range(400):  # bounded: the batch must be seen waiting for the clock
                if _waiting_on_a_lock(engine):
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the batch did not wait for the apply holding the plan clock")
    worker.join(timeout=60)
    assert not worker.is_alive() and done[0].counted == 6
    assert plans.loaded.revision == revision
    # The batch after the apply counted the new key result for all of its events; the one
    # before it did not (the backfill's part, step 4-5).
    assert _totals(engine) == {"sales": 10.0, "revenue": 60.0}
