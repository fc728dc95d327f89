"""apply_batch on real SQLite and PostgreSQL: replays and duplicate ids count once; event
totals are kept for planned shops only, made-up types under `other`."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.plans.apply import apply_files
from okrflow.store.engine import make_engine
from okrflow.store.schema import SchemaOutdated, current_revision, ensure_schema, head_revision
from okrflow.store.tables import applied_offsets, shop_event_totals
from tests.factories import decode_batch_of, encoded

NOW = datetime(2026, 2, 1, tzinfo=UTC)


PLAN = """
shop: {shop}
timezone: Europe/Rome
objectives:
  - key: grow
    title: Grow
    owner: marketing
    level: company
    period: {{start: 2026-01-01, end: 2026-12-31}}
    key_results:
      - key: posts
        metric: {{event: shop.posted, aggregate: count}}
        target: 10
"""


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Engine:
    """A database with plans for the shops `salone-bella` and `another`."""
    engine = make_engine(database_url)
    ensure_schema(engine)
    files = []
    for shop in ("salone-bella", "another"):
        files.append(tmp_path / f"{shop}.yaml")
        files[-1].write_text(PLAN.format(shop=shop))
    apply_files(engine, files, NOW)
    return engine


def _totals(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                shop_event_totals.c.shop, shop_event_totals.c.event_type, shop_event_totals.c.events
            )
        ).all()
    return {(s, t): n for s, t, n in rows}


def test_empty_database_is_upgraded_to_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()


def test_batch_counts_per_shop_and_type_and_records_offsets(engine: Engine) -> None:
    batch = decode_batch_of(
        "events",
        [
            (0, 0, encoded(event_id="1")),
            (0, 1, encoded(event_id="2", event_type="order.placed")),
            (0, 2, encoded(event_id="4", event_type="shop.posted", data={})),
            (0, 3, encoded(event_id="5", event_type="made.up", data={})),
            (0, 4, encoded(event_id="6", event_type="made.up.too", data={})),
            (1, 0, encoded(event_id="3", shop="unplanned")),
            (1, 1, b"garbage"),
        ],
        10_000,
    )
    result = apply_batch(engine, batch, NOW, PlanCache())
    assert (result.counted, result.duplicates, result.replayed) == (6, 0, 0)
    assert _totals(engine) == {
        ("salone-bella", "customer.created"): 1,
        ("salone-bella", "order.placed"): 1,
        ("salone-bella", "shop.posted"): 1,
        ("salone-bella", "other"): 2,
    }
    with engine.connect() as conn:
        offsets = dict(
            conn.execute(
                select(applied_offsets.c.kafka_partition, applied_offsets.c.next_offset)
            ).all()
        )
    assert offsets == {0: 5, 1: 2}


def test_replaying_an_applied_batch_counts_nothing(engine: Engine) -> None:
    messages = [(0, o, encoded(event_id=f"id-{o}")) for o in range(10)]
    apply_batch(engine, decode_batch_of("events", messages, 10_000), NOW, PlanCache())
    # A crash before the Kafka commit redelivers an overlapping range.
    again = apply_batch(
        engine,
        decode_batch_of("events", [*messages[5:], (0, 10, encoded(event_id="id-10"))], 10_000),
        NOW,
        PlanCache(),
    )
    assert (again.counted, again.duplicates, again.replayed) == (1, 0, 5)
    assert _totals(engine) == {("salone-bella", "customer.created"): 11}


def test_same_shop_and_id_counts_once_within_and_across_batches(engine: Engine) -> None:
    first = apply_batch(
        engine,
        decode_batch_of(
            "events", [(0, 0, encoded(event_id="x")), (0, 1, encoded(event_id="x"))], 10_000
        ),
        NOW,
        PlanCache(),
    )
    second = apply_batch(
        engine,
        decode_batch_of(
            "events",
            [(1, 0, encoded(event_id="x")), (1, 1, encoded(event_id="x", shop="another"))],
            10_000,
        ),
        NOW,
        PlanCache(),
    )
    assert (first.counted, first.duplicates) == (1, 1)
    assert (second.counted, second.duplicates) == (1, 1)
    assert _totals(engine) == {
        ("salone-bella", "customer.created"): 1,
        ("another", "customer.created"): 1,
    }


def test_outdated_schema_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    with pytest.raises(SchemaOutdated, match="okrflow db upgrade"):
        ensure_schema(engine)
