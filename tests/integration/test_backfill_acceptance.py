"""The backfill, end to end on both databases with the real broker (issue 12's acceptance):

1. plan v1 is applied and a season of events is counted by the worker: count, sum,
   count_distinct, latest, max, ratio and cadence key results; duplicate ids, undecodable
   messages, a value beyond 2^53 (dead-lettered), events for another shop;
2. plan v2 adds one key result per aggregate (one counting exactly like a v1 key result, so
   the two share a target) and changes one metric; `okrflow backfill` runs while more
   events are emitted, and is killed with SIGKILL once it has committed a chunk; the worker
   is killed with SIGKILL once it has counted past the cut, and restarted;
3. after `okrflow backfill --wait`, every key result in force equals, exactly, what a fresh
   database gives with plan v2 applied before one worker reads the whole topic: the
   `progress --format json` entries and every per-day row.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from okrflow.settings import Settings
from okrflow.topics import ensure_topics
from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.integration.streams import Message, applied_messages, db_scalar, produce_many
from tests.services import wait_for

TZ = "Europe/Rome"
ROME = ZoneInfo(TZ)
SHOP = "studio-lumen"
TODAY = datetime.now(ROME).date()
START, END = TODAY - timedelta(days=30), TODAY + timedelta(days=30)
V1 = f"""\
shop: {SHOP}
timezone: {TZ}
objectives:
  - key: season
    title: Season
    owner: social
    period: {{start: {START}, end: {END}}}
    key_results:
      - {{key: orders, metric: {{event: order.placed, aggregate: count}}, target: 900}}
      - {{key: revenue, metric: {{event: order.placed, aggregate: sum, field: data.total}},
          target: 90000}}
      - {{key: clients, metric: {{event: order.placed, aggregate: count_distinct,
          field: data.customer_id}}, target: 90}}
      - {{key: followers, metric: {{event: social.followers.changed, aggregate: latest,
          field: data.followers}}, baseline: 100, target: 400}}
      - key: daily-posts
        metric: {{event: social.post.published, aggregate: count}}
        cadence: {{every: day, at_least: 2}}
"""
# Keeps orders, revenue, clients, daily-posts; re-meters `followers` (a filter); adds one of
# each aggregate, `orders-again` counting exactly as `orders` does (a shared target).
V2 = (
    V1.replace(
        """aggregate: latest,
          field: data.followers}}, baseline: 100, target: 400}}""",
        """aggregate: latest,
          field: data.followers, where: {{data.platform: tiktok}}}}, baseline: 100, target: 400}}""",
    )
    + """\
      - {key: orders-again, metric: {event: order.placed, aggregate: count}, target: 900}
      - {key: big-revenue, metric: {event: order.placed, aggregate: sum, field: data.total,
          where: {data.total: {gte: 100}}}, target: 50000}
      - {key: cities, metric: {event: order.placed, aggregate: count_distinct,
          field: data.channel}, target: 8}
      - {key: reach, metric: {event: social.followers.changed, aggregate: latest,
          field: data.followers}, baseline: 100, target: 400}
      - {key: top-order, metric: {event: order.placed, aggregate: max, field: data.total},
          target: 300}
      - key: refund-rate
        metric: {ratio: {numerator: {event: order.refunded, aggregate: count},
                         denominator: {event: order.placed, aggregate: count}}}
        maintain: {below: 0.2}
      - key: posts-again
        metric: {event: social.post.published, where: {data.platform: tiktok}, aggregate: count}
        cadence: {every: day, at_least: 1}
"""
)


class Season:
    """A seeded stream of the shop's events over the period so far, with hostile extras."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sent: list[Message] = []
        self.n = 0

    def _event(self, event_type: str, data: dict[str, object], event_id: str | None = None,
               at: datetime | None = None) -> Message:  # fmt: skip
        self.n += 1
        if at is None:
            day = START + timedelta(days=self.rng.randrange((TODAY - START).days + 1))
            at = datetime(day.year, day.month, day.day, self.rng.randrange(24),
                          self.rng.randrange(60), tzinfo=ROME)  # fmt: skip
        body = cloud_event(
            event_id or f"e-{self.n}", shop=SHOP, event_type=event_type,
            time=at.isoformat(), data=data,
        )  # fmt: skip
        return (SHOP.encode(), json.dumps(body).encode(), [])

    def part(self, n: int) -> list[Message]:
        rng, out = self.rng, []
        for _ in range(n):
            kind = rng.random()
            if kind < 0.55:
                out.append(self._event("order.placed", {
                    "order_id": f"o-{self.n}", "currency": "EUR",
                    "total": rng.choice([20, 45, 99, 100, 150, 240]),
                    "customer_id": f"c{rng.randrange(120)}", "channel": f"ch{rng.randrange(12)}",
                }))  # fmt: skip
            elif kind < 0.65:
                out.append(self._event("order.refunded", {
                    "order_id": f"o-{rng.randrange(1000)}", "amount": 10, "currency": "EUR",
                }))  # fmt: skip
            elif kind < 0.8:
                out.append(self._event("social.followers.changed", {
                    "followers": rng.randrange(100, 500),
                    "platform": rng.choice(["tiktok", "instagram"]),
                }))  # fmt: skip
            else:
                out.append(self._event("social.post.published", {
                    "platform": rng.choice(["tiktok", "instagram"]), "post_id": f"p-{self.n}",
                }))  # fmt: skip
            if rng.random() < 0.03 and self.sent:  # a producer retry: an id sent before
                key, value, headers = rng.choice(self.sent)
                out.append((key, value, headers))
        out.append((b"garbage", b"{not json", []))
        out.append(self._event("order.placed", {
            "order_id": "o-huge", "currency": "EUR", "total": 1e300, "customer_id": "x",
        }))  # fmt: skip
        other = cloud_event(f"o-{self.n}", shop="other-shop", event_type="order.placed",
                            time=datetime.now(ROME).isoformat(), data={"order_id": "o", "customer_id": "c", "total": 5, "currency": "EUR"})  # fmt: skip
        out.append((b"other-shop", json.dumps(other).encode(), []))
        # Two follower counts at the same instant, newer than any other: the later one in the
        # log is the level (in every part: the backfill's copies tie with the live ones).
        tie = datetime(TODAY.year, TODAY.month, TODAY.day, 23, 59, 30, tzinfo=ROME)
        for followers in (rng.randrange(100, 500), rng.randrange(100, 500)):
            out.append(
                self._event(
                    "social.followers.changed",
                    {"followers": followers, "platform": "tiktok"},
                    at=tie,
                )
            )
        self.sent.extend(out)
        return out


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database of the same kind, for the fresh run."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


class Topic:
    """Produces to the events topic and remembers each partition's end."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.ends: dict[int, int] = {}

    def send(self, messages: list[Message]) -> None:
        for partition, offset in produce_many(self.bootstrap, self.topic, messages):
            self.ends[partition] = max(self.ends.get(partition, 0), offset + 1)

    @property
    def end(self) -> int:
        return sum(self.ends.values())


def _key_results(env: dict[str, str], at: str) -> dict[tuple[str, str], dict[str, object]]:
    report = json.loads(_ok(okrflow(env, "progress", "--format", "json", "--at", at)))
    (shop,) = [s for s in report["shops"] if s["shop"] == SHOP]
    return {
        (o["key"], kr["key"]): {k: v for k, v in kr.items() if k != "backfill"}
        for o in shop["objectives"] for kr in o["key_results"]
    }  # fmt: skip


def _day_rows(database_url: str) -> dict[tuple[str, str, str, str], tuple[object, ...]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT k.objective_key, k.key, d.part, d.day, d.events, d.total, d.level, "
                "d.last_event_at FROM kr_day_totals d JOIN key_results k "
                "ON k.id = d.key_result_id WHERE k.retired_at IS NULL"
            )).all()  # fmt: skip
    finally:
        engine.dispose()
    return {(o, k, p, str(d)): (e, t, lv, str(at)) for o, k, p, d, e, t, lv, at in rows}


def _wait_applied(database_url: str, topic: Topic) -> None:
    wait_for(lambda: applied_messages(database_url, topic.topic), lambda n: n >= topic.end, 120,
             f"the worker to apply {topic.end} messages")  # fmt: skip


def test_backfill_survives_kill_9_and_equals_a_fresh_run(
    kafka_bootstrap: str, database_url: str, fresh_database_url: str, tmp_path: Path
) -> None:
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path,
                       backfill_chunk_size=40, backfill_lease_seconds=3)  # fmt: skip
    topic = Topic(kafka_bootstrap, env["OKRFLOW_EVENTS_TOPIC"])
    asyncio.run(ensure_topics(Settings(
        kafka_bootstrap=kafka_bootstrap, events_topic=topic.topic,
        dlq_topic=env["OKRFLOW_DLQ_TOPIC"],
    )))  # fmt: skip
    at = datetime.now(ROME).replace(microsecond=0).isoformat()
    (tmp_path / "v1.yaml").write_text(V1)
    (tmp_path / "v2.yaml").write_text(V2)
    season = Season(seed=12)
    _ok(okrflow(env, "apply", str(tmp_path / "v1.yaml")))
    topic.send(season.part(2500))

    log = tmp_path / "worker.log"
    with running(env, "worker", log=log) as worker:
        _wait_applied(database_url, topic)
        _ok(okrflow(env, "apply", "--yes", str(tmp_path / "v2.yaml")))
        cut = applied_messages(database_url, topic.topic)
        assert db_scalar(database_url, "SELECT count(*) FROM backfill_jobs") == 1
        runner = subprocess.Popen(
            [sys.executable, "-m", "okrflow", "backfill"], env=env,
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "backfill.log").open("wb"),
        )  # fmt: skip
        topic.send(season.part(300))  # while the backfill runs
        wait_for(
            lambda: db_scalar(database_url,
                              "SELECT coalesce(max(next_offset), 0) FROM backfill_partitions"),
            lambda n: n > 0 or runner.poll() is not None, 60, "a committed backfill chunk",
        )  # fmt: skip
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        scanned = db_scalar(database_url, "SELECT max(next_offset) FROM backfill_partitions")
        assert 0 < scanned < cut, f"killed too late to test a resume: {scanned} of {cut}"
        wait_for(lambda: applied_messages(database_url, topic.topic), lambda n: n > cut, 60,
                 "the worker to count past the cut")  # fmt: skip
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    with running(env, "worker", log=tmp_path / "worker2.log"):
        topic.send(season.part(300))
        # The live worker first: the backfill's older copies then meet newer stored levels.
        _wait_applied(database_url, topic)
        done = okrflow(env, "backfill", "--wait", timeout=300)
        assert done.returncode == 0, done.stderr + done.stdout
        assert "done" in done.stdout, done.stdout
        _wait_applied(database_url, topic)
        backfilled = _key_results(env, at)

    fresh = pipeline_env(kafka_bootstrap, fresh_database_url, tmp_path / "fresh")
    fresh["OKRFLOW_EVENTS_TOPIC"] = topic.topic
    _ok(okrflow(fresh, "apply", str(tmp_path / "v2.yaml")))
    with running(fresh, "worker", log=tmp_path / "fresh.log"):
        _wait_applied(fresh_database_url, topic)
        expected = _key_results(fresh, at)
    assert db_scalar(fresh_database_url, "SELECT count(*) FROM backfill_jobs") == 0

    assert set(backfilled) == set(expected) and len(expected) == 12
    for key in expected:
        assert backfilled[key] == expected[key], key
    assert _day_rows(database_url) == _day_rows(fresh_database_url)
    states = db_scalar(database_url, "SELECT count(*) FROM backfill_jobs WHERE state = 'done'")
    assert states == 1
    assert db_scalar(database_url, "SELECT count(*) FROM backfill_seen") == 0
