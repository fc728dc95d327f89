"""A hostile tenant changes nothing for the other shops: real broker, real intake, real worker,
both databases.

Shop A (`hostile-a`) sends, with its own token, 20 batches of 500 events the worker would
refuse (numbers okrflow cannot count exactly, broken data, bad times): the intake refuses
every one with 422 and produces nothing. The same 10,000 events, and 500 valid ones with
poison among them, then reach the topic through a Kafka producer of A's own (keyed by A, the
door the intake cannot guard), on the partition that shop B shares with it, while B and C
send 10,000 valid events through the intake. B's and C's counts are exact, A's valid events
are counted too, every bad one is dead-lettered once, and the worker never stops: A is
quarantined (one log line), not a reason to stop everyone.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.integration.streams import (
    Message,
    applied_messages,
    committed_messages,
    produce_many,
    read_topic,
)
from tests.integration.tenants import ready, token, values
from tests.services import free_port, wait_for

HOSTILE, B, C = "hostile-a", "tenant-b", "tenant-c"  # murmur2 of 2: A and B on 0, C on 1
BATCHES, BATCH = 20, 500
VALID_PER_SHOP = 5_000  # B and C: 10,000 valid events together


def _plan(shop: str) -> str:
    return f"""\
shop: {shop}
timezone: Europe/Rome
objectives:
  - key: sales
    title: Sales
    owner: sales
    period: {{start: 2026-01-01, end: 2026-12-31}}
    key_results:
      - {{key: orders, metric: {{event: order.placed, aggregate: count}}, target: 100}}
      - {{key: revenue, metric: {{event: order.placed, aggregate: sum, field: data.total}}, target: 1000}}
"""


def _order(shop: str, event_id: str, total: Any) -> dict[str, Any]:
    data = {"order_id": event_id, "customer_id": "c", "total": total, "currency": "EUR"}
    return cloud_event(
        event_id,
        shop=shop,
        event_type="order.placed",
        time="2026-03-10T10:00:00+01:00",
        data=data,
    )


# Totals the worker refuses, as JSON text (1e300 is not a Python literal json.dumps writes).
_BAD_TOTALS = ["1e300", "9007199254740993", "1.7976931348623157e308", "-5", '"lots"']


def _refused(i: int) -> bytes:
    """An order the worker would refuse: bad_number or invalid_data, one in ten bad_time."""
    event = _order(HOSTILE, f"bad-{i}", "TOTAL")
    if i % 10 == 9:
        event["time"] = "9999-12-31T23:59:59-10:00"
        event["data"]["total"] = 1
    text = json.dumps(event)
    return text.replace('"TOTAL"', _BAD_TOTALS[i % len(_BAD_TOTALS)]).encode()


def _poison(i: int) -> bytes:
    """Poison of every kind a producer can write: not_json, bad_number, bad_shop, too_deep."""
    order = json.dumps(_order(HOSTILE, f"p-{i}", 1))
    deep = '"customer_id": "c", "deep": ' + "[" * 2000 + "]" * 2000
    kinds = [
        "{not json",
        order.replace('"total": 1', '"total": 1e20'),
        json.dumps({**_order(HOSTILE, f"p-{i}", 1), "shop": "Not A Shop"}),
        order.replace('"customer_id": "c"', deep),
    ]
    return kinds[i % len(kinds)].encode()


def test_a_hostile_tenant_changes_nothing_for_the_other_shops(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = pipeline_env(
        kafka_bootstrap, database_url, tmp_path, intake_port=port, events_partitions=2,
        batch_size=2000,
    )  # fmt: skip
    for shop in (HOSTILE, B, C):
        plan = tmp_path / f"{shop}.yaml"
        plan.write_text(_plan(shop))
        assert okrflow(env, "apply", str(plan)).returncode == 0
    tokens = {shop: token(env, shop) for shop in (HOSTILE, B, C)}
    topic, dlq = env["OKRFLOW_EVENTS_TOPIC"], env["OKRFLOW_DLQ_TOPIC"]

    refused = [_refused(i) for i in range(BATCHES * BATCH)]
    valid_a = [json.dumps(_order(HOSTILE, f"a-{i}", i % 7)).encode() for i in range(500)]
    direct: list[Message] = []
    for i, value in enumerate(valid_a):  # poison among A's valid events
        direct.append((HOSTILE.encode(), value, []))
        if i % 10 == 0:
            direct.append((HOSTILE.encode(), _poison(i // 10), []))
    direct += [(HOSTILE.encode(), value, []) for value in refused]
    poison = len(direct) - len(valid_a)
    totals = {shop: [(i * 13) % 100 + 1 for i in range(VALID_PER_SHOP)] for shop in (B, C)}

    base = f"http://127.0.0.1:{port}"
    batch_type = {"Content-Type": "application/cloudevents-batch+json"}
    with (
        running(env, "worker", log=tmp_path / "worker.log") as worker,
        running(env, "intake", log=tmp_path / "intake.log") as intake,
    ):
        wait_for(lambda: ready(f"{base}/readyz"), lambda s: s == 200, 60,
                 f"the intake ready (log: {tmp_path / 'intake.log'})")  # fmt: skip
        # A's own producer writes to the topic while the others use the intake.
        producer = threading.Thread(target=produce_many, args=(kafka_bootstrap, topic, direct))
        producer.start()
        statuses: dict[str, list[int]] = {HOSTILE: [], B: [], C: []}
        with httpx.Client(base_url=base, timeout=60) as client:
            for n in range(BATCHES):
                body = b"[" + b",".join(refused[n * BATCH : (n + 1) * BATCH]) + b"]"
                auth = {"Authorization": f"Bearer {tokens[HOSTILE]}"}
                response = client.post("/v1/events", headers={**auth, **batch_type}, content=body)
                statuses[HOSTILE].append(response.status_code)
                if n % 2:
                    continue
                k = n // 2  # B and C: 10 batches of 500 each
                for shop in (B, C):
                    batch = [_order(shop, f"{shop}-{i}", totals[shop][i])
                             for i in range(k * BATCH, (k + 1) * BATCH)]  # fmt: skip
                    auth = {"Authorization": f"Bearer {tokens[shop]}"}
                    response = client.post("/v1/events", headers={**auth, **batch_type},
                                           content=json.dumps(batch))  # fmt: skip
                    statuses[shop].append(response.status_code)
        producer.join()
        assert statuses == {HOSTILE: [422] * BATCHES, B: [202] * 10, C: [202] * 10}

        expected = len(direct) + 2 * VALID_PER_SHOP
        wait_for(
            lambda: applied_messages(database_url, topic),
            lambda n: n == expected or worker.poll() is not None,
            120,
            f"all {expected} messages applied (log: {tmp_path / 'worker.log'})",
        )
        group = env["OKRFLOW_CONSUMER_GROUP"]
        wait_for(  # offsets are committed last: the dead letters are all written by then
            lambda: committed_messages(kafka_bootstrap, group, topic),
            lambda n: n == expected,
            60,
            "the worker's Kafka commit of the last batch",
        )
        for shop in (B, C):
            assert values(env, shop) == {"orders": VALID_PER_SHOP, "revenue": sum(totals[shop])}
        assert values(env, HOSTILE) == {"orders": 500, "revenue": sum(i % 7 for i in range(500))}
        assert worker.poll() is None, "the worker stopped"
        assert intake.poll() is None

    # Nothing of A's refused requests reached the topic; what its producer wrote that the
    # worker refuses is dead-lettered once each, on A's partition, keyed by A.
    records = read_topic(kafka_bootstrap, topic)
    through_intake = [r for r in records if r.key in (B.encode(), C.encode())]
    assert len(through_intake) == 2 * VALID_PER_SHOP
    assert {r.partition for r in records if r.key == HOSTILE.encode()} == {
        r.partition for r in records if r.key == B.encode()
    }
    dead = read_topic(kafka_bootstrap, dlq)
    assert len(dead) == poison
    assert {r.key for r in dead} == {HOSTILE.encode()}
    assert len({(r.partition, dict(r.headers)["okrflow.offset"]) for r in dead}) == poison
    reasons = {dict(r.headers)["okrflow.reason"].decode() for r in dead}
    assert reasons == {"bad_number", "invalid_data", "bad_time", "not_json", "bad_shop", "too_deep"}
    log = (tmp_path / "worker.log").read_text()
    assert "quarantined hostile-a" in log
    assert "stopping instead of dead-lettering" not in log
    assert "Traceback" not in log
