"""write_counted (a batch the counting helper counted) on SQLite and PostgreSQL: its counts
are used as they are; after a plan change, and with ids seen before, the worker counts the
batch itself to the same result as write_batch; a helper whose decoding differs from the
worker's is refused (CountsDisagree), and nothing is written."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from okrflow.counting.decode import DecodedBatch
from okrflow.ingest.helper_protocol import CountedBatch, count_batch
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import BatchResult, CountsDisagree, write_batch, write_counted
from okrflow.plans.apply import apply_files
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.store.tables import applied_offsets, kr_day_totals, seen_events
from tests.factories import decode_batch_of, encoded

NOW = datetime(2026, 4, 1, tzinfo=UTC)
TOPIC = "events"
PLAN = """
shop: salone-bella
timezone: Europe/Rome
objectives:
  - key: grow
    title: Grow
    owner: marketing
    level: company
    period: {start: 2026-03-01, end: 2026-03-31}
    key_results:
      - key: clients
        metric: {event: customer.created, aggregate: count}
        target: 10
"""


def _batch(first: int, ids: list[str]) -> DecodedBatch:
    messages: list[tuple[int, int, bytes | None]] = [
        (0, first + i, encoded(event_id=event_id, time="2026-03-05T10:00:00Z"))
        for i, event_id in enumerate(ids)
    ]
    messages.append((0, first + len(ids), b"not json"))
    batch: DecodedBatch = decode_batch_of(TOPIC, messages, 10_000)
    return batch


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Engine:
    engine = make_engine(database_url)
    ensure_schema(engine)
    (tmp_path / "plan.yaml").write_text(PLAN)
    apply_files(engine, [tmp_path / "plan.yaml"], NOW)
    return engine


def _counted(plans: PlanCache, engine: Engine, batch: DecodedBatch) -> CountedBatch:
    with engine.connect() as conn:
        loaded = plans.refresh(conn)
    return count_batch(batch, loaded.index, loaded.revision)


def _state(engine: Engine) -> tuple[list[Any], list[Any], list[Any]]:
    with engine.connect() as conn:
        days = conn.execute(select(kr_day_totals.c.day, kr_day_totals.c.events)).all()
        seen = conn.execute(select(seen_events.c.event_id).order_by(seen_events.c.event_id)).all()
        offsets = conn.execute(select(applied_offsets.c.next_offset)).all()
    return [tuple(r) for r in days], [r[0] for r in seen], [r[0] for r in offsets]


def _write(
    engine: Engine, plans: PlanCache, counted: CountedBatch, batch: DecodedBatch
) -> BatchResult:
    written = write_counted(engine, counted, TOPIC, lambda: batch, NOW, plans)
    written.commit()
    return written.result


def test_helper_counts_are_written_as_they_are(engine: Engine) -> None:
    plans = PlanCache()
    batch = _batch(0, ["a", "b", "a"])
    result = _write(engine, plans, _counted(plans, engine, batch), batch)
    assert (result.counted, result.duplicates, result.replayed) == (2, 1, 0)
    assert _state(engine) == ([(datetime(2026, 3, 5).date(), 2)], ["a", "b"], [4])


def test_ids_seen_before_and_a_plan_change_are_counted_by_the_worker(
    engine: Engine, tmp_path: Path
) -> None:
    plans = PlanCache()
    first = _batch(0, ["a", "b"])
    _write(engine, plans, _counted(plans, engine, first), first)
    second = _batch(3, ["b", "c", "d"])  # b was counted by the first batch
    result = _write(engine, plans, _counted(plans, engine, second), second)
    assert (result.counted, result.duplicates) == (2, 1)
    third = _batch(7, ["e"])
    stale = _counted(plans, engine, third)
    (tmp_path / "plan.yaml").write_text(PLAN.replace("target: 10", "target: 12"))
    apply_files(engine, [tmp_path / "plan.yaml"], NOW)  # a new revision: counted again
    assert _write(engine, plans, stale, third).counted == 1
    assert _state(engine) == ([(datetime(2026, 3, 5).date(), 5)], list("abcde"), [9])


def test_a_helper_that_decoded_otherwise_is_refused_and_nothing_is_written(
    engine: Engine, tmp_path: Path
) -> None:
    plans = PlanCache()
    first = _batch(0, ["a"])
    _write(engine, plans, _counted(plans, engine, first), first)
    before = _state(engine)
    second = _batch(2, ["a", "b"])
    counted = _counted(plans, engine, second)
    # The helper found the undecodable message valid: its keys and rejections differ.
    differs = replace(counted, decode_rejected=[])
    with pytest.raises(CountsDisagree):
        write_counted(engine, differs, TOPIC, lambda: second, NOW, plans)
    (tmp_path / "plan.yaml").write_text(PLAN.replace("target: 10", "target: 11"))
    apply_files(engine, [tmp_path / "plan.yaml"], NOW)
    with pytest.raises(CountsDisagree):  # the plan-change path checks it too
        write_counted(engine, differs, TOPIC, lambda: second, NOW, plans)
    assert _state(engine) == before
    # The worker's own path counts the batch.
    written = write_batch(engine, second, NOW, plans)
    written.commit()
    assert written.result.counted == 1
