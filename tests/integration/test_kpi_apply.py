"""KPIs through `apply` and a batch transaction, on real SQLite and PostgreSQL: rows of kind
'kpi' beside the key results; a changed window or band keeps the row and its counters, a
changed metric retires it and starts a new one, a removed KPI is retired; new and re-metered
KPIs get one backfill job with the cut; a count_distinct KPI records each (day, value) in
`kpi_distinct_days`; `progress` shows the values."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine, select, text

from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.plans.apply import apply_files
from okrflow.plans.stored import load_active_plans
from okrflow.reports.progress import progress_report
from okrflow.store.backfill_jobs import read_job_cuts
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.store.tables import key_results, kpi_distinct_days
from tests.factories import decode_batch_of

SHOP = "salone-bella"
TOPIC = "okr.events"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
HEAD = """\
shop: salone-bella
timezone: Europe/Rome
objectives:
  - key: spring
    title: Spring
    owner: sales
    period: {start: 2026-02-01, end: 2026-04-30}
    key_results:
      - {key: sales, metric: {event: shop.sale, aggregate: count}, target: 1000}
kpis:
"""
V1 = (
    HEAD
    + """\
  - {key: sales-week, window: 7d, metric: {event: shop.sale, aggregate: count}}
  - {key: buyers, window: 30d, metric: {event: shop.sale, aggregate: count_distinct,
                                        field: data.buyer}}
  - key: big-share
    window: 1d
    metric: {ratio: {numerator: {event: shop.sale, aggregate: count,
                                 where: {data.amount: {gte: 50}}},
                     denominator: {event: shop.sale, aggregate: count}}}
"""
)
# sales-week: only window and band change; buyers: re-metered (a filter); big-share removed;
# top added.
V2 = (
    HEAD
    + """\
  - {key: sales-week, title: Sales, window: 14d, healthy: {above: 3},
     metric: {event: shop.sale, aggregate: count}}
  - {key: buyers, window: 30d, metric: {event: shop.sale, aggregate: count_distinct,
                                        field: data.buyer, where: {data.amount: {gte: 20}}}}
  - {key: top, window: 7d, metric: {event: shop.sale, aggregate: max, field: data.amount}}
"""
)


def _batch(first: int, n: int, day: str) -> object:
    messages: list[tuple[int, int, bytes | None]] = []
    for offset in range(first, first + n):
        event = {
            "specversion": "1.0", "id": f"e-{offset}", "source": "/pos", "type": "shop.sale",
            "time": f"{day}T10:00:00Z", "shop": SHOP,
            "data": {"amount": 10 * offset, "buyer": f"b{offset % 3}"},
        }  # fmt: skip
        messages.append((0, offset, json.dumps(event).encode()))
    return decode_batch_of(TOPIC, messages, 100_000)


def _kpis(engine: Engine) -> dict[str, tuple[object, object]]:
    with engine.connect() as conn:
        (shop,) = progress_report(conn, NOW).to_json()["shops"]
    return {k["key"]: (k["value"], k["backfill"]) for k in shop["kpis"]}


def _ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        (active,) = load_active_plans(conn)
    return active.kpi_ids


def test_apply_keeps_remeters_retires_and_counts_kpis(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    (tmp_path / "v1.yaml").write_text(V1)
    (tmp_path / "v2.yaml").write_text(V2)
    (first,) = apply_files(engine, [tmp_path / "v1.yaml"], NOW)
    assert [str(c) for c in first.changes][-3:] == [
        "added    kpi sales-week", "added    kpi buyers", "added    kpi big-share",
    ]  # fmt: skip
    assert first.kpis_to_backfill == 0  # nothing applied yet: the live worker counts it all
    plans = PlanCache()
    apply_batch(engine, _batch(0, 6, "2026-02-27"), NOW, plans)  # type: ignore[arg-type]
    # amounts 0..50: 1 of 6 is >= 50 on that day, but the 1d window ends on 2026-03-01.
    assert _kpis(engine) == {
        "sales-week": (6, None), "buyers": (3, None), "big-share": (None, None),
    }  # fmt: skip
    with engine.connect() as conn:
        assert conn.execute(select(key_results.c.key, key_results.c.kind)
                            .order_by(key_results.c.id)).all() == [
            ("sales", "kr"), ("sales-week", "kpi"), ("buyers", "kpi"), ("big-share", "kpi"),
        ]  # fmt: skip
        seen = conn.execute(select(kpi_distinct_days.c.day, kpi_distinct_days.c.value)).all()
    assert sorted(seen) == [(date(2026, 2, 27), f'"b{i}"') for i in range(3)]

    before = _ids(engine)
    (second,) = apply_files(engine, [tmp_path / "v2.yaml"], NOW)
    changes = [str(c) for c in second.changes]
    assert changes == [
        'changed  kpi sales-week (healthy: (unset) -> {"above": 3}, title: (unset) -> Sales, '
        "window: 7d -> 14d)",
        'changed  kpi buyers (metric.where: (unset) -> {"data.amount": {"gte": 20}}; '
        "metric changed: counters restart at zero)",
        "added    kpi top",
        "retired  kpi big-share",
    ]
    after = _ids(engine)
    assert after["sales-week"] == before["sales-week"]
    assert after["buyers"] != before["buyers"] and "big-share" not in after
    assert second.kpis_to_backfill == 2 and second.to_backfill == 0
    with engine.connect() as conn:
        (job,) = read_job_cuts(conn, SHOP)
        in_job = set(conn.execute(
            text("SELECT id FROM key_results WHERE backfill_job_id = :j"), {"j": job.job_id}
        ).scalars())  # fmt: skip
        retired = set(conn.execute(
            text("SELECT key FROM key_results WHERE retired_at IS NOT NULL")).scalars())  # fmt: skip
    assert job.cut == {0: 6} and in_job == {after["buyers"], after["top"]}
    assert retired == {"buyers", "big-share"}
    # The kept KPI keeps its counters; the new ones start at the cut, marked pending.
    assert _kpis(engine) == {
        "sales-week": (6, None), "buyers": (0, "pending"), "top": (None, "pending"),
    }  # fmt: skip

    apply_batch(engine, _batch(6, 2, "2026-03-01"), NOW, plans)  # type: ignore[arg-type]
    assert _kpis(engine) == {
        "sales-week": (8, None), "buyers": (2, "pending"), "top": (70, "pending"),
    }  # fmt: skip
    (third,) = apply_files(engine, [tmp_path / "v2.yaml"], NOW)
    assert third.changes == [] and third.revision_id is None
