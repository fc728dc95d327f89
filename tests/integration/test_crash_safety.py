"""Exactly once through crashes and rebalances, on the real broker and both databases.

50,000 events with 2% duplicate ids and 1% invalid; the worker is killed with SIGKILL at three
random moments and restarted. The counts must equal those computed here from what was sent,
and the dead-letter topic must hold exactly the invalid messages, each with its reason.
"""

from __future__ import annotations

import json
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from okrflow.events.types import BUILT_IN
from tests.factories import SAMPLE_DATA, cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.integration.streams import applied_messages, produce_raw, read_topic, totals
from tests.services import wait_for

N_EVENTS = 50_000
SHOPS = [f"shop-{i}" for i in range(12)]
TYPES = [
    "customer.created",
    "order.placed",
    "campaign.launched",
    "social.post.published",
    "visit.logged",
]
PLAN = """\
shop: shop-0
timezone: UTC
objectives:
  - key: sales
    title: Sales
    owner: sales
    period: {start: 2026-01-01, end: 2026-12-31}
    key_results:
      - key: orders
        metric: {event: order.placed, aggregate: count}
        target: 100000
      - key: revenue
        metric: {event: order.placed, aggregate: sum, field: data.total}
        target: 1000000
      - key: buyers
        metric: {event: order.placed, aggregate: count_distinct, field: data.customer_id}
        target: 1000
"""


class CrashStream:
    def __init__(self, n: int, seed: int) -> None:
        rng = random.Random(seed)
        self.lines: list[str] = []
        self.raw_invalid: list[bytes] = [f"not json {i}".encode() for i in range(20)]
        self.expected_dead: Counter[tuple[bytes, str]] = Counter(
            (v, "not_json") for v in self.raw_invalid
        )
        self.valid: dict[tuple[str, str], dict[str, Any]] = {}
        invalid_json = n // 100 - len(self.raw_invalid)
        duplicates = n // 50
        kinds = ["bad_shop", "not_cloudevent", "invalid_data"]
        for i in range(n - invalid_json - duplicates):
            shop, event_type = rng.choice(SHOPS), rng.choice(TYPES)
            data = dict(SAMPLE_DATA.get(event_type, {"page": "/"}))
            if event_type == "order.placed":
                data.update(total=rng.randint(1, 200), customer_id=f"c-{rng.randrange(300)}")
            event = cloud_event(
                f"e-{i}",
                shop=shop,
                event_type=event_type,
                data=data,
                time=f"2026-0{rng.randint(1, 3)}-{rng.randint(10, 28)}T10:00:00Z",
            )
            self.valid[shop, event["id"]] = event
            self.lines.append(json.dumps(event))
        for i in range(invalid_json):
            kind = kinds[i % 3]
            event = cloud_event(f"bad-{i}", shop=rng.choice(SHOPS))
            if kind == "bad_shop":
                event["shop"] = f"Bad Shop {i}"
            elif kind == "not_cloudevent":
                del event["time"]
            else:
                event["type"], event["data"] = "order.placed", {"order_id": str(i), "total": -1}
            line = json.dumps(event)
            self.lines.append(line)
            self.expected_dead[line.encode(), kind] += 1
        valid_lines = [
            line for line in self.lines if not line.startswith('{"specversion": "1.0", "id": "bad-')
        ]
        self.lines.extend(rng.choice(valid_lines) for _ in range(duplicates))  # producer retries
        rng.shuffle(self.lines)

    def expected_totals(self) -> dict[tuple[str, str], int]:
        """Totals are kept for the planned shop only; its types that are neither built in
        nor named in its plan under `other`."""
        return dict(
            Counter(
                (e["shop"], e["type"] if e["type"] in BUILT_IN else "other")
                for e in self.valid.values()
                if e["shop"] == "shop-0"
            )
        )

    def expected_sales(self) -> dict[str, float]:
        orders = [
            e for e in self.valid.values() if e["shop"] == "shop-0" and e["type"] == "order.placed"
        ]
        return {
            "orders": len(orders),
            "revenue": sum(e["data"]["total"] for e in orders),
            "buyers": len({e["data"]["customer_id"] for e in orders}),
        }


def _check_results(
    env: dict[str, str], database_url: str, kafka_bootstrap: str, stream: CrashStream
) -> None:
    assert totals(database_url) == stream.expected_totals()
    report = json.loads(okrflow(env, "progress", "--format", "json").stdout)
    sales = {kr["key"]: kr["value"] for kr in report["shops"][0]["objectives"][0]["key_results"]}
    assert sales == stream.expected_sales()
    dead = read_topic(kafka_bootstrap, env["OKRFLOW_DLQ_TOPIC"])
    got = Counter((r.value, dict(r.headers)["okrflow.reason"].decode()) for r in dead)
    assert got == stream.expected_dead
    for record in dead:
        headers = dict(record.headers)
        assert headers["okrflow.topic"].decode() == env["OKRFLOW_EVENTS_TOPIC"]
        assert int(headers["okrflow.partition"]) == record.partition
        assert headers["okrflow.error"]


def _start(env: dict[str, str], stream: CrashStream, tmp_path: Path, kafka_bootstrap: str) -> int:
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN)
    assert okrflow(env, "apply", str(plan)).returncode == 0
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(stream.lines) + "\n")
    emitted = okrflow(env, "emit", str(events), timeout=300)
    assert emitted.returncode == 0, emitted.stderr
    produce_raw(kafka_bootstrap, env["OKRFLOW_EVENTS_TOPIC"], stream.raw_invalid, key=b"shop-0")
    return len(stream.lines) + len(stream.raw_invalid)


def test_kill_9_three_times(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> None:
    env = pipeline_env(
        kafka_bootstrap, database_url, tmp_path, batch_size=1500, kafka_session_timeout=6
    )
    stream = CrashStream(N_EVENTS, seed=7)
    total = _start(env, stream, tmp_path, kafka_bootstrap)
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    rng = random.Random()
    kill_points = sorted(rng.uniform(0.05, 0.9) for _ in range(3))
    for i, point in enumerate(kill_points):
        with running(env, "worker", log=tmp_path / f"worker-{i}.log") as worker:
            wait_for(
                lambda: applied_messages(database_url, topic),
                lambda n, point=point: n >= point * total,
                120,
                f"{point:.0%} applied before kill {i + 1}",
            )
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
    with running(env, "worker", log=tmp_path / "worker-final.log") as worker:
        wait_for(
            lambda: applied_messages(database_url, topic),
            lambda n: n == total,
            180,
            "every message applied",
        )
        assert worker.poll() is None
    _check_results(env, database_url, kafka_bootstrap, stream)


def test_two_workers_one_restarted(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> None:
    env = pipeline_env(
        kafka_bootstrap, database_url, tmp_path, batch_size=1000, kafka_session_timeout=6
    )
    stream = CrashStream(N_EVENTS // 2, seed=11)
    total = _start(env, stream, tmp_path, kafka_bootstrap)
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    with running(env, "worker", log=tmp_path / "worker-a.log") as a:
        with running(env, "worker", log=tmp_path / "worker-b.log") as b:
            wait_for(
                lambda: applied_messages(database_url, topic),
                lambda n: n >= 0.3 * total,
                120,
                "30% applied",
            )
            b.send_signal(signal.SIGTERM)
            assert b.wait(60) == 0
        with running(env, "worker", log=tmp_path / "worker-b2.log") as b2:
            wait_for(
                lambda: applied_messages(database_url, topic),
                lambda n: n == total,
                180,
                "every message applied",
            )
            assert a.poll() is None and b2.poll() is None
    _check_results(env, database_url, kafka_bootstrap, stream)
