"""Retention deleting the start of the log while a backfill runs (the real broker, both
databases): the scan goes on from the new log start, never from the log's end. A consumer
reset to the latest offset would mark every message up to the cut as scanned, still in the
log but never counted."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.records_to_delete import RecordsToDelete
from sqlalchemy import Engine

from okrflow.backfill.progress import JobProgress, ProgressView
from okrflow.backfill.runner import Runner
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.plans.apply import apply_parsed, parse_files
from okrflow.settings import Settings
from okrflow.store.backfill import list_jobs
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from tests.factories import decode_batch_of
from tests.integration.streams import Message, produce_many
from tests.integration.test_backfill_runner import NOW, SHOP, V1, V2, _sale, _value

MESSAGES, DELETED = 100, 50


async def _admin(bootstrap: str, work: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if work == "create":
            await admin.create_topics([NewTopic(topic, 1, 1)])
        else:  # what retention does to the oldest segment, at once
            tp = TopicPartition(topic, 0)
            await admin.delete_records({tp: RecordsToDelete(before_offset=DELETED)})
    finally:
        await admin.close()


class DeleteWhenStarted(ProgressView):
    """Deletes the log's first records once the runner has read the log start and is about
    to fetch (the runner calls `started` inside its event loop: a thread of its own here)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic

    def started(self, job: JobProgress) -> None:
        thread = threading.Thread(
            target=lambda: asyncio.run(_admin(self.bootstrap, "delete", self.topic))
        )
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive()


def _job(database_url: str, tmp_path: Path, topic: str) -> tuple[Engine, int]:
    """v1 applied, the 100 messages of partition 0 counted live, then v2 (one new key
    result): a job with cut {0: 100} on `topic`."""
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    for name, text in (("v1.yaml", V1), ("v2.yaml", V2)):
        (tmp_path / name).write_text(text)
        apply_parsed(engine, parse_files([tmp_path / name]), NOW, events_topic=topic)
        if name == "v1.yaml":
            values = [(0, o, _sale(f"e-{o}")) for o in range(MESSAGES)]
            apply_batch(engine, decode_batch_of(topic, values, 10**6), NOW, PlanCache())
    with engine.connect() as conn:
        (job,) = list_jobs(conn, SHOP, ("pending",))
    return engine, job.id


def test_a_log_start_moving_during_the_scan_skips_only_what_was_deleted(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    topic = f"events-{os.urandom(4).hex()}"
    asyncio.run(_admin(kafka_bootstrap, "create", topic))
    engine, job_id = _job(database_url, tmp_path, topic)
    values: list[Message] = [(SHOP.encode(), _sale(f"e-{o}"), []) for o in range(MESSAGES)]
    placed = produce_many(kafka_bootstrap, topic, values)
    assert placed == [(0, o) for o in range(MESSAGES)]  # as the job's cut expects
    settings = Settings(
        events_topic=topic, dlq_topic=f"{topic}.dlq", kafka_bootstrap=kafka_bootstrap,
        backfill_chunk_size=10,
    )  # fmt: skip
    runner = Runner(settings, engine, view=DeleteWhenStarted(kafka_bootstrap, topic), owner="r")
    assert runner.take(job_id)
    with engine.connect() as conn:
        (job,) = list_jobs(conn, SHOP, ("running",))
    progress = asyncio.run(runner.run(job))
    assert progress.outcome == "done"
    # Counted live before the apply: all 100; the new key result: those still in the log.
    assert _value(engine, "sales") == MESSAGES
    assert _value(engine, "again") == MESSAGES - DELETED
    engine.dispose()
