"""The runner's finish records a freeze offset for every partition of the events topic, also
those of which nothing was applied when the job was made (no cut row): a baseline measured
from data is frozen only once the live worker has counted all of them to their end then
(the real broker, both databases)."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import Engine, text

from okrflow.backfill.chunk import JobIndex
from okrflow.backfill.runner import Runner
from okrflow.counting.decode import Message
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.plans.apply import apply_parsed, parse_files
from okrflow.plans.stored import load_active_plans
from okrflow.settings import Settings
from okrflow.store.backfill import list_jobs, read_partitions
from okrflow.store.backfill_jobs import backfilling_key_results, read_backfill_states
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from tests.factories import decode_batch_of
from tests.integration.test_backfill_runner import NOW, SHOP, V1, V2, _sale

MEASURED = (
    V2 + "      - {key: grown, metric: {event: shop.sale, aggregate: count}, "
    'baseline: {from: history}, target: "+15%"}\n'
)


async def _create(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, partition: int, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(n):
            await producer.send_and_wait(topic, _sale(f"p{partition}-{i}"), partition=partition)
    finally:
        await producer.stop()


def _job(
    database_url: str, tmp_path: Path, topic: str, live: int, plan: str = MEASURED
) -> tuple[Engine, int]:
    """v1 applied, `live` messages of partition 0 counted (nothing of partition 1), then
    `plan` (with a measured baseline): a job with cut {0: live} only."""
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    for name, source in (("v1.yaml", V1), ("v2.yaml", plan)):
        (tmp_path / name).write_text(source)
        apply_parsed(engine, parse_files([tmp_path / name]), NOW, events_topic=topic)
        if name == "v1.yaml":
            values = [(0, o, _sale(f"e-{o}")) for o in range(live)]
            apply_batch(engine, decode_batch_of(topic, values, 10**6), NOW, PlanCache())
    with engine.connect() as conn:
        (job,) = list_jobs(conn, SHOP, ("pending",))
    return engine, job.id


def test_the_finish_freezes_partitions_without_a_cut(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    topic = f"events-{os.urandom(4).hex()}"
    asyncio.run(_create(kafka_bootstrap, topic))
    engine, job_id = _job(database_url, tmp_path, topic, live=5)
    with engine.connect() as conn:
        assert {p: s.cut_offset for p, s in read_partitions(conn, job_id).items()} == {0: 5}
    # The log: 5 messages in partition 0 (counted live), 3 in partition 1 (not yet).
    for partition, n in ((0, 5), (1, 3)):
        asyncio.run(_produce(kafka_bootstrap, topic, partition, n))
    settings = Settings(
        events_topic=topic, dlq_topic=f"{topic}.dlq", kafka_bootstrap=kafka_bootstrap
    )  # fmt: skip
    runner = Runner(settings, engine, owner="r")
    assert runner.take(job_id)
    with engine.connect() as conn:
        (job,) = list_jobs(conn, SHOP, ("running",))
    assert asyncio.run(runner.run(job)).outcome == "waiting"  # for its baseline
    with engine.connect() as conn:
        freeze = {p: s.freeze_offset for p, s in read_partitions(conn, job_id).items()}
    assert freeze == {0: 5, 1: 3}
    engine.dispose()


LATER = (NOW + timedelta(days=30)).date(), (NOW + timedelta(days=60)).date()
NEXT_QUARTER = f"""{V2}\
  - key: next
    title: Next
    owner: sales
    period: {{start: {LATER[0]}, end: {LATER[1]}}}
    key_results:
      - {{key: later, metric: {{event: shop.sale, aggregate: count}}, baseline: {{from: history}}, target: "+15%"}}
kpis:
  - {{key: sales-7d, metric: {{event: shop.sale, aggregate: count}}, window: 7d, healthy: {{above: 1}}}}
"""  # fmt: skip


def test_a_scanned_job_is_done_for_all_but_the_baselines_it_waits_for(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """A job whose scan is finished but whose baseline window ends next quarter: the key
    results and KPIs it completed are no longer partial (a KPI's health is exposed and can
    alert); only the key result waiting for its baseline still shows the backfill."""
    topic = f"events-{os.urandom(4).hex()}"
    asyncio.run(_create(kafka_bootstrap, topic))
    engine, job_id = _job(database_url, tmp_path, topic, live=5, plan=NEXT_QUARTER)
    asyncio.run(_produce(kafka_bootstrap, topic, 0, 5))
    settings = Settings(
        events_topic=topic, dlq_topic=f"{topic}.dlq", kafka_bootstrap=kafka_bootstrap
    )  # fmt: skip
    runner = Runner(settings, engine, owner="r")
    assert runner.take(job_id)
    with engine.connect() as conn:
        (job,) = list_jobs(conn, SHOP, ("running",))
    assert asyncio.run(runner.run(job)).outcome == "waiting"  # for next quarter's start
    with engine.connect() as conn:
        (active,) = load_active_plans(conn, SHOP)
        ids = {**{k: i for (_, k), i in active.key_result_ids.items()}, **active.kpi_ids}
        states = read_backfill_states(conn, ids.values())
        partial = backfilling_key_results(conn)
    shown = {key: states.get(i) for key, i in ids.items()}
    assert shown == {"sales": None, "again": "done", "later": "pending", "sales-7d": "done"}
    assert partial == {ids["later"]}
    engine.dispose()


def test_a_cancelled_job_forgets_its_dedupe_set(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """A job scanned in part, whose key results were then all retired: the runner cancels it
    and deletes its `backfill_seen` rows (one per event of the shop scanned)."""
    topic = f"events-{os.urandom(4).hex()}"
    asyncio.run(_create(kafka_bootstrap, topic))
    engine, job_id = _job(database_url, tmp_path, topic, live=5, plan=V2)
    asyncio.run(_produce(kafka_bootstrap, topic, 0, 5))
    settings = Settings(
        events_topic=topic, dlq_topic=f"{topic}.dlq", kafka_bootstrap=kafka_bootstrap
    )  # fmt: skip
    runner = Runner(settings, engine, owner="r")
    assert runner.take(job_id)
    first = [Message(0, o, _sale(f"p0-{o}")) for o in range(3)]
    assert runner._count(job_id, topic, first, {0: 3}, {}, JobIndex()).state == "counted"

    def seen() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM backfill_seen")).scalar_one())

    assert seen() == 3
    apply_parsed(engine, parse_files([tmp_path / "v1.yaml"]), NOW, events_topic=topic)
    with engine.connect() as conn:
        (job,) = list_jobs(conn, SHOP, ("running",))
    assert asyncio.run(runner.run(job)).outcome == "cancelled"
    assert seen() == 0
    engine.dispose()
