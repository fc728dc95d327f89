"""Resuming from the database, on the real broker and both databases.

A database restored from a backup that is behind Kafka's committed offsets catches up exactly
(the worker resumes from the database's applied offsets, not from Kafka's); a topic deleted
and created again (the database's offsets past its end) stops the worker with one line that
names both offsets and the command that resolves it, and after that command the worker counts
the new topic.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiokafka.admin import AIOKafkaAdminClient

from okrflow.settings import Settings
from okrflow.store.engine import make_engine
from okrflow.topics import ensure_topics
from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.integration.streams import (
    applied_messages,
    committed_messages,
    produce_many,
    read_topic,
    totals,
)
from tests.services import wait_for

SHOP = "restore-shop"
PLAN = f"""\
shop: {SHOP}
timezone: UTC
objectives:
  - key: clients
    title: Clients
    owner: marketing
    period: {{start: 2026-01-01, end: 2026-12-31}}
    key_results:
      - {{key: new, metric: {{event: customer.created, aggregate: count}}, target: 100000}}
"""


def _events(first: int, n: int) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    return [
        (SHOP.encode(), json.dumps(cloud_event(f"c-{i}", shop=SHOP)).encode(), [])
        for i in range(first, first + n)
    ]


def _settings(env: dict[str, str]) -> Settings:
    return Settings(
        kafka_bootstrap=env["OKRFLOW_KAFKA_BOOTSTRAP"],
        events_topic=env["OKRFLOW_EVENTS_TOPIC"],
        dlq_topic=env["OKRFLOW_DLQ_TOPIC"],
        events_partitions=3,
    )


def _count_until(
    env: dict[str, str], database_url: str, total: int, log: Path, *, committed: bool = True
) -> None:
    """Run a worker until `total` messages are applied (and committed to Kafka: the last
    step of a batch), then stop it."""
    topic, group = env["OKRFLOW_EVENTS_TOPIC"], env["OKRFLOW_CONSUMER_GROUP"]
    bootstrap = env["OKRFLOW_KAFKA_BOOTSTRAP"]
    with running(env, "worker", log=log) as worker:
        wait_for(
            lambda: (applied_messages(database_url, topic),
                     committed_messages(bootstrap, group, topic) if committed else total),
            lambda n: n == (total, total) or worker.poll() is not None,
            120, f"{total} messages applied and committed (log: {log})",
        )  # fmt: skip
        assert worker.poll() is None, log.read_text()[-3000:]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0


class Backup:
    """A real backup of the test database: SQLite's online backup, PostgreSQL's template copy."""

    def __init__(self, database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.url = sa.make_url(make_engine(database_url).url)
        self.kind = self.url.get_backend_name()
        self.request = request
        self.file = tmp_path / "backup.db"

    def _admin(self) -> sa.Engine:
        base = self.request.getfixturevalue("postgres_url")
        return make_engine(base).execution_options(isolation_level="AUTOCOMMIT")

    def take(self) -> None:
        if self.kind == "sqlite":
            with sqlite3.connect(str(self.url.database)) as src, sqlite3.connect(self.file) as dst:
                src.backup(dst)
            return
        with self._admin().connect() as conn:
            conn.execute(
                sa.text(f"CREATE DATABASE {self.url.database}_bak TEMPLATE {self.url.database}")
            )

    def restore(self) -> None:
        if self.kind == "sqlite":
            db = Path(str(self.url.database))
            for suffix in ("-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(self.file, db)
            return
        with self._admin().connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {self.url.database} WITH (FORCE)"))
            conn.execute(
                sa.text(f"CREATE DATABASE {self.url.database} TEMPLATE {self.url.database}_bak")
            )
            conn.execute(sa.text(f"DROP DATABASE {self.url.database}_bak"))


async def _recreate(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([settings.events_topic])
        for _ in range(100):  # bounded: deletion is asynchronous in the broker
            if settings.events_topic not in set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    for _ in range(50):
        try:
            await ensure_topics(settings)
            return
        except Exception:  # the broker may still be deleting it
            await asyncio.sleep(0.2)
    await ensure_topics(settings)


def test_a_restored_database_catches_up_and_a_recreated_topic_stops_clearly(
    kafka_bootstrap: str, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path, batch_size=300,
                       events_partitions=3)  # fmt: skip
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    settings = _settings(env)
    asyncio.run(ensure_topics(settings))
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN)
    assert okrflow(env, "apply", str(plan)).returncode == 0

    # 1. Count 2,000 events, stop the worker, back up the database.
    produce_many(kafka_bootstrap, topic, _events(0, 2000))
    _count_until(env, database_url, 2000, tmp_path / "worker-1.log")
    backup = Backup(database_url, request, tmp_path)
    backup.take()
    # 2. 3,000 more (and one invalid message) are counted, and Kafka's committed offsets move
    # on with them.
    produce_many(kafka_bootstrap, topic, [*_events(2000, 3000), (SHOP.encode(), b"not json", [])])
    _count_until(env, database_url, 5001, tmp_path / "worker-2.log")
    # 3. The backup comes back: the database is 3,000 events behind Kafka's commits.
    backup.restore()
    assert applied_messages(database_url, topic) == 2000
    assert totals(database_url) == {(SHOP, "customer.created"): 2000}
    # 4. It catches up exactly.
    _count_until(env, database_url, 5001, tmp_path / "worker-3.log")
    assert totals(database_url) == {(SHOP, "customer.created"): 5000}
    log = (tmp_path / "worker-3.log").read_text()
    assert "resuming" in log

    # 5. The topic is deleted and created again: the database is past its end.
    asyncio.run(_recreate(settings))
    produce_many(kafka_bootstrap, topic, [*_events(10_000, 10), (SHOP.encode(), b"bad", [])])
    with running(env, "worker", log=tmp_path / "worker-4.log") as worker:
        code = worker.wait(90)
    out = (tmp_path / "worker-4.log").read_text()
    assert code == 3, out[-3000:]
    last = out.strip().splitlines()[-1]
    assert last.startswith("okrflow worker: the database has counted"), last
    assert "okrflow offsets reset --to log-start" in last
    assert "log ends at" in last and "database at offset" in last
    assert "Traceback" not in out
    assert totals(database_url) == {(SHOP, "customer.created"): 5000}

    shown = okrflow(env, "offsets", "show")
    assert shown.returncode == 0 and "PAST THE LOG'S END" in shown.stdout, shown
    reset = okrflow(env, "offsets", "reset", "--to", "log-start")
    assert reset.returncode == 0, reset.stderr
    assert " -> 0" in reset.stdout
    _count_until(env, database_url, 11, tmp_path / "worker-5.log", committed=False)
    assert totals(database_url) == {(SHOP, "customer.created"): 5010}
    # The new topic's invalid message is dead-lettered, though the old dead letters have
    # larger source offsets: the reset wrote a marker after them.
    dead = read_topic(kafka_bootstrap, env["OKRFLOW_DLQ_TOPIC"])
    reasons = [(r.value, dict(r.headers)["okrflow.reason"]) for r in dead]
    assert reasons == [(b"not json", b"not_json"), (None, b"reset"), (b"bad", b"not_json")]
