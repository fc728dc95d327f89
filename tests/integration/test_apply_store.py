"""`okrflow apply` on real SQLite and PostgreSQL: idempotence, counters that survive, audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.plans.apply import apply_files
from okrflow.plans.parse import PlanError
from okrflow.reports.progress import progress_report
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.store.tables import objectives, plan_revisions
from tests.factories import decode_batch_of, encoded

NOW = datetime(2026, 2, 1, tzinfo=UTC)
PLAN = """\
shop: salone-bella
timezone: Europe/Rome
objectives:
  - key: more-clients
    title: More clients
    owner: marketing
    period: {start: 2026-01-01, end: 2026-06-30}
    key_results:
      - key: new-clients
        metric: {event: customer.created, aggregate: count}
        baseline: 200
        target: "+15%"
      - key: campaigns
        metric: {event: campaign.launched, aggregate: count}
        target: 10
  - key: extra
    title: Extra
    owner: marketing
    period: {start: 2026-01-01, end: 2026-06-30}
    key_results:
      - key: posts
        metric: {event: social.post.published, aggregate: count}
        target: 10
"""


@pytest.fixture
def engine(database_url: str) -> Engine:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    return engine


def _values(engine: Engine) -> dict[str, float]:
    with engine.connect() as conn:
        report = progress_report(conn, NOW).to_json()
    return {
        f"{o['key']}/{kr['key']}": kr["value"]
        for shop in report["shops"] for o in shop["objectives"] for kr in o["key_results"]
    }  # fmt: skip


def test_reapply_keeps_counters_unless_the_metric_changes(engine: Engine, tmp_path: Path) -> None:
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN)
    first = apply_files(engine, [plan], NOW)
    assert len(first[0].changes) == 5
    assert str(first[0].changes[0]) == "added    objective more-clients"
    assert first[0].revision_id == 1
    assert apply_files(engine, [plan], NOW)[0].changes == []

    messages = [
        (
            0,
            0,
            encoded(event_id="1", event_type="customer.created", time="2026-01-10T10:00:00+01:00"),
        ),
        (
            0,
            1,
            encoded(event_id="2", event_type="campaign.launched", time="2026-01-11T10:00:00+01:00"),
        ),
        (
            0,
            2,
            encoded(event_id="3", event_type="campaign.launched", time="2026-01-12T10:00:00+01:00"),
        ),
    ]
    result = apply_batch(engine, decode_batch_of("t", messages, 10_000), NOW, PlanCache())
    assert (result.counted, result.unmatched) == (3, 0)
    assert _values(engine) == {
        "more-clients/new-clients": 201,
        "more-clients/campaigns": 2,
        "extra/posts": 0,
    }

    changed = (
        PLAN.replace("title: More clients", "title: Many more clients")
        .replace('target: "+15%"', "target: 240")
        .replace(
            "{event: campaign.launched, aggregate: count}",
            "{event: campaign.launched, where: {data.kind: ad}, aggregate: count}",
        )
    )
    changed = changed[: changed.index("  - key: extra")]
    plan.write_text(changed)
    dry = apply_files(engine, [plan], NOW, dry_run=True)
    assert dry[0].revision_id is None
    assert _values(engine)["more-clients/campaigns"] == 2  # a dry run writes nothing
    second = apply_files(engine, [plan], NOW)
    assert [str(c) for c in second[0].changes] == [
        "changed  objective more-clients (title: More clients -> Many more clients)",
        "changed  key result more-clients/new-clients (target: +15% -> 240)",
        'changed  key result more-clients/campaigns (metric.where: (unset) -> {"data.kind": "ad"}; '
        "metric changed: counters restart at zero)",
        "retired  objective extra",
        "retired  key result extra/posts",
    ]
    assert _values(engine) == {"more-clients/new-clients": 201, "more-clients/campaigns": 0}

    with engine.connect() as conn:
        revisions = conn.execute(
            select(plan_revisions.c.id, plan_revisions.c.changes, plan_revisions.c.source)
        ).all()
        retired = (
            conn.execute(select(objectives.c.key).where(objectives.c.retired_at.is_not(None)))
            .scalars()
            .all()
        )
    assert [r.id for r in revisions] == [1, 2]
    assert json.loads(revisions[1].changes)[3] == {
        "action": "retired",
        "what": "objective extra",
        "detail": "",
    }
    assert revisions[1].source == changed
    assert retired == ["extra"]


def test_bad_file_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(PLAN)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        PLAN.replace("salone-bella", "other-shop").replace(
            "target: 10\n  - key: extra", "target: nope\n  - key: extra"
        )
    )
    with pytest.raises(PlanError) as info:
        apply_files(engine, [good, bad], NOW)
    assert [str(p) for p in info.value.problems] == [
        f'{bad}:15: objectives[0].key_results[1].target: must be a number or a relative target like "+15%" or "-10%"'
    ]
    with engine.connect() as conn:
        assert conn.execute(select(plan_revisions.c.id)).first() is None
