"""Batches written with KnownDistinct (values known stored are left out) leave the same
count_distinct rows and day totals as batches written without it, on SQLite and PostgreSQL:
repeats on later days, on earlier days (the value moves), and across a plan change."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, select

from okrflow.ingest.known_distinct import KnownDistinct
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import precount, write_batch
from okrflow.plans.apply import apply_files
from okrflow.store.engine import make_engine, normalise_url
from okrflow.store.schema import ensure_schema
from okrflow.store.tables import kr_day_totals, kr_distinct_values
from tests.factories import decode_batch_of, encoded

NOW = datetime(2026, 4, 1, tzinfo=UTC)
PLAN = """
shop: salone-bella
timezone: Europe/Rome
objectives:
  - key: grow
    title: Grow
    owner: marketing
    level: company
    period: {{start: 2026-03-01, end: 2026-03-31}}
    key_results:
      - key: buyers
        metric: {{event: order.placed, aggregate: count_distinct, field: data.customer_id}}
        target: 10
{extra}
"""
EXTRA = """      - key: orders
        metric: {event: order.placed, aggregate: count}
        target: 10
"""


def _rows(engine: Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as conn:
        values = conn.execute(
            select(kr_distinct_values).order_by(*kr_distinct_values.c)
        ).all()  # fmt: skip
        days = conn.execute(
            select(kr_day_totals.c.key_result_id, kr_day_totals.c.part, kr_day_totals.c.day,
                   kr_day_totals.c.events, kr_day_totals.c.total)
            .order_by(kr_day_totals.c.key_result_id, kr_day_totals.c.day)
        ).all()  # fmt: skip
    return [tuple(r) for r in values], [tuple(r) for r in days]


def _run(url: str, tmp_path: Path, with_cache: bool) -> tuple[list[Any], list[Any]]:
    engine = make_engine(url)
    ensure_schema(engine)
    plan = tmp_path / "salone-bella.yaml"
    plan.write_text(PLAN.format(extra=""))
    apply_files(engine, [plan], NOW)
    plans, known = PlanCache(), KnownDistinct() if with_cache else None
    rng = random.Random(7)
    offset = 0
    for b in range(12):
        if b == 6:  # a plan change midway: what is known is forgotten
            plan.write_text(PLAN.format(extra=EXTRA))
            apply_files(engine, [plan], NOW)
        messages = []
        for _ in range(40):
            day = rng.randint(1, 28)
            messages.append((0, offset, encoded(
                event_id=f"e{offset}", event_type="order.placed",
                time=f"2026-03-{day:02d}T10:00:00Z",
                data={"order_id": "o", "customer_id": f"c{rng.randrange(15)}", "total": 1,
                      "currency": "EUR"},
            )))  # fmt: skip
            offset += 1
        batch = decode_batch_of("events", messages, 10_000)
        with engine.connect() as conn:
            loaded = plans.refresh(conn)
        written = write_batch(engine, batch, NOW, plans, precount(batch, loaded), known)
        written.commit()
        if known is not None:
            known.learn(written.result.revision, written.result.deltas)
    if known is not None:
        assert len(known) > 0  # it was used
    rows = _rows(engine)
    engine.dispose()
    return rows


@pytest.fixture(params=["sqlite", "postgresql"])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two fresh, empty databases of one kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(normalise_url(base))
    a, b = (url.set(database=n).render_as_string(hide_password=False) for n in names)
    yield a, b
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def test_writes_with_known_values_left_out_equal_full_writes(
    two_databases: tuple[str, str], tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with_cache = _run(two_databases[0], tmp_path / "a", with_cache=True)
    assert with_cache[0] and with_cache[1]
    assert with_cache == _run(two_databases[1], tmp_path / "b", with_cache=False)
