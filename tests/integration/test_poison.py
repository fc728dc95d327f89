"""Poison and fuzz: hostile messages among valid events, through the real broker and worker,
on both databases.

Every class of message that once stopped the worker (a tombstone, 2,000-deep nesting, times
at the calendar's ends, a 400-digit number in a summed field, NUL characters, over-long
attributes, sums that would overflow, a value the database refuses) is sent among a few
thousand valid events and 10,000 seeded fuzz messages (near-valid CloudEvents and random
bytes). The worker must never exit; reading the dead-letter topic back against the produced
offsets, every message is counted or dead-lettered (never both, never neither), with the
reason expected of it; the valid counts are exact; `progress --format json` is strict JSON;
and the exporter shows no series for the 1,000 unplanned shops and 500 made-up types.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from okrflow.events import CloudEvent, decode_event
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running, scrape
from tests.integration.streams import (
    Message,
    applied_messages,
    committed_messages,
    produce_many,
    read_topic,
)
from tests.services import free_port, wait_for

SHOP = "poison-shop"
PLAN = f"""\
shop: {SHOP}
timezone: Europe/Rome
objectives:
  - key: sales
    title: Sales
    owner: sales
    period: {{start: 2026-01-01, end: 2026-12-31}}
    key_results:
      - {{key: orders, metric: {{event: order.placed, aggregate: count}}, target: 100000}}
      - {{key: revenue, metric: {{event: shop.sale, aggregate: sum, field: data.amount}}, target: 1}}
      - key: buyers
        metric: {{event: shop.sale, aggregate: count_distinct, field: data.customer}}
        target: 1
      - {{key: biggest, metric: {{event: shop.sale, aggregate: max, field: data.amount}}, target: 1}}
"""

# A value the database refuses, as an operator's constraint would: events whose id starts
# with "db-poison" cannot be recorded. The worker must find them by bisection.
POISON_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER poison BEFORE INSERT ON seen_events WHEN NEW.event_id LIKE 'db-poison%' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test constraint'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
        "IF left(NEW.event_id, 9) = 'db-poison' THEN "
        "RAISE EXCEPTION 'refused by the test constraint' USING ERRCODE = '23514'; END IF; "
        "RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER poison BEFORE INSERT ON seen_events FOR EACH ROW EXECUTE FUNCTION poison()",
    ],
}


def _event(event_id: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("time", "2026-03-10T10:00:00+01:00")
    return cloud_event(event_id, shop=kwargs.pop("shop", SHOP), **kwargs)


def _sale(event_id: str, amount: Any, customer: str = "c-1") -> bytes:
    return json.dumps(
        _event(event_id, event_type="shop.sale", data={"amount": amount, "customer": customer})
    ).encode()


def poison() -> list[tuple[Message, str]]:
    """(message, the dead-letter reason expected of it): one of every hostile class."""
    deep = _event("deep")
    deep["data"] = {"customer_id": "c", "x": "NEST"}
    deep_json = json.dumps(deep).replace('"NEST"', "[" * 2000 + "]" * 2000).encode()
    order = _event("o", event_type="order.placed")
    return [
        ((b"k", None, []), "empty"),  # tombstone
        ((b"k", deep_json, []), "too_deep"),
        ((b"k", json.dumps(_event("t1", time="9999-12-31T23:59:59-10:00")).encode(), []), "bad_time"),
        ((b"k", json.dumps(_event("t2", time="0001-01-01T00:00:00+10:00")).encode(), []), "bad_time"),
        ((b"k", _sale("huge", int("9" * 400)), []), "bad_number"),
        ((b"k", _sale("inf-1", 1.7e308), []), "bad_number"),
        ((b"k", _sale("inf-2", 1.7e308), []), "bad_number"),
        ((b"k", _sale("neg", -(2**60)), []), "bad_number"),
        ((b"k", json.dumps(_event("nul\x00id")).encode(), []), "not_cloudevent"),
        ((b"k", json.dumps(_event("nul-type", event_type="order\x00placed")).encode(), []), "not_cloudevent"),
        ((b"k", json.dumps(_event("x" * 300)).encode(), []), "not_cloudevent"),
        ((b"k", json.dumps(_event("long-type", event_type="t" * 300)).encode(), []), "not_cloudevent"),
        ((b"k", json.dumps(_event("long-source", source="/" * 3000)).encode(), []), "not_cloudevent"),
        ((b"k", json.dumps(_event("ctl", source="/shops/\x1b[2J")).encode(), []), "not_cloudevent"),
        ((b"k", b"{not json", []), "not_json"),
        ((b"k", b"\xff\xfe\x00", []), "not_json"),
        ((b"k", b"[1, 2]", []), "not_cloudevent"),
        ((b"k", json.dumps(_event("bs", shop="Bad Shop")).encode(), []), "bad_shop"),
        ((b"k", json.dumps({**order, "data": {"total": -1}}).encode(), []), "invalid_data"),
        ((b"k", json.dumps(_event("big", data={"customer_id": "c", "pad": "x" * 300_000})).encode(), []), "too_large"),
        ((b"k", b'{"a": 1}', [("ce_specversion", b"1.0"), ("ce_id", b"\xff")]), "not_cloudevent"),
        ((b"k", _sale("db-poison-1", 5), [("trace", b"abc")]), "database_rejected"),
        ((b"k", _sale("db-poison-2", 6), []), "database_rejected"),
    ]  # fmt: skip


def fuzz(n: int, seed: int) -> list[Message]:
    """Seeded fuzz: half random bytes, half CloudEvents with one attribute or data field
    replaced by a random JSON value (shops without a plan, so counts stay predictable)."""
    rng = random.Random(seed)

    def value(depth: int = 0) -> Any:
        kind = rng.randrange(9 if depth < 3 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return rng.choice([True, False])
        if kind == 2:
            return rng.choice([0, -1, 2**53 + 1, 10**30, rng.randrange(-(10**6), 10**6)])
        if kind == 3:
            return rng.choice([0.5, -1e308, 1e-300, rng.random() * 1e6])
        if kind in (4, 5):
            return "".join(chr(rng.randrange(0, 0x250)) for _ in range(rng.randrange(0, 12)))
        if kind == 6:
            return [value(depth + 1) for _ in range(rng.randrange(0, 4))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randrange(0, 4))}

    messages: list[Message] = []
    fields = ["specversion", "id", "source", "type", "time", "shop", "data", "subject"]
    for i in range(n):
        if i % 2:
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
            messages.append((None if i % 7 else b"k", raw, []))
            continue
        event = cloud_event(
            f"fuzz-{i}", shop=f"fuzz-{rng.randrange(50)}",
            event_type=rng.choice(["order.placed", "customer.created", "fuzz.type"]),
        )  # fmt: skip
        field = rng.choice(fields)
        if rng.random() < 0.2:
            event.pop(field, None)
        elif field == "data" or rng.random() < 0.3:
            event["data"] = {**event["data"], rng.choice(["total", "customer_id", "z"]): value()}
        else:
            event[field] = value()
        messages.append((b"k", json.dumps(event).encode(), []))
    return messages


def valid_events(rng: random.Random) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(3000):
        if i % 3 == 0:
            events.append(_event(f"o-{i}", event_type="order.placed"))
        else:
            amount: Any = rng.randint(1, 500) if i % 50 else "lots"  # not a number: skipped
            events.append(_event(f"s-{i}", event_type="shop.sale",
                                 data={"amount": amount, "customer": f"c-{rng.randrange(400)}"}))  # fmt: skip
    for i in range(1000):  # shops without a plan, made-up types
        events.append(cloud_event(f"u-{i}", shop=f"nobody-{i}", event_type=f"made.up.{i % 500}"))
    for i in range(500):
        events.append(_event(f"m-{i}", event_type=f"made.up.{i}", data={}))
    return events


def test_poison_and_fuzz_never_stop_the_count(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = pipeline_env(
        kafka_bootstrap, database_url, tmp_path, batch_size=500, max_invalid_share=1,
        exporter_port=port, exporter_refresh_seconds=0.2,
    )  # fmt: skip
    topic, dlq = env["OKRFLOW_EVENTS_TOPIC"], env["OKRFLOW_DLQ_TOPIC"]
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN)
    assert okrflow(env, "apply", str(plan)).returncode == 0
    engine = make_engine(database_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        for statement in POISON_TRIGGER[engine.dialect.name]:
            conn.exec_driver_sql(statement)
    engine.dispose()

    rng = random.Random(2026)
    valid = valid_events(rng)
    hostile = poison()
    messages: list[Message] = [(b"k", json.dumps(e).encode(), []) for e in valid]
    messages += [m for m, _ in hostile]
    messages += fuzz(10_000, seed=9)
    rng.shuffle(messages)
    expected_reason = {id(m): reason for m, reason in hostile}

    with running(env, "worker", log=tmp_path / "worker.log") as worker:
        positions = produce_many(kafka_bootstrap, topic, messages)
        wait_for(
            lambda: applied_messages(database_url, topic),
            lambda n: n == len(messages) or worker.poll() is not None,
            180,
            f"all {len(messages)} messages applied (log: {tmp_path / 'worker.log'})",
        )
        group = env["OKRFLOW_CONSUMER_GROUP"]
        wait_for(  # offsets are committed last: the dead letters are all written by then
            lambda: committed_messages(kafka_bootstrap, group, topic),
            lambda n: n == len(messages),
            60,
            "the worker's Kafka commit of the last batch",
        )
        assert worker.poll() is None, "the worker exited"
        dead = read_topic(kafka_bootstrap, dlq)
        with running(env, "exporter", log=tmp_path / "exporter.log"):
            samples = wait_for(
                lambda: scrape(f"http://127.0.0.1:{port}/metrics"),
                lambda s: any(k.startswith("okr_key_result_value{") for k in s),
                60,
                "the exporter's metrics",
            )
        assert worker.poll() is None, "the worker exited"
    log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in log

    # Every message counted or dead-lettered: never both, never neither.
    by_position = dict(zip(positions, messages, strict=True))
    dead_at: Counter[tuple[int, int]] = Counter()
    for record in dead:
        headers = dict(record.headers)
        source = (int(headers["okrflow.partition"]), int(headers["okrflow.offset"]))
        dead_at[source] += 1
        key, value, sent_headers = by_position[source]
        assert (record.key, record.value) == (key, value)
        for header in sent_headers:
            assert header in record.headers
        reason = headers["okrflow.reason"].decode()
        message = by_position[source]
        want = expected_reason.get(id(message))
        if want is None:  # fuzz: the reason the decoder gives it
            decoded = decode_event(value, 256 * 1024, sent_headers)
            want = decoded.reason if not isinstance(decoded, CloudEvent) else "bad_number"
        assert reason == want, (value, reason, headers["okrflow.error"])
        assert headers["okrflow.error"]
    assert max(dead_at.values()) == 1, "a message was dead-lettered twice"
    neither = [
        position
        for position, (_key, value, headers) in by_position.items()
        if position not in dead_at
        and not isinstance(decode_event(value, 256 * 1024, headers), CloudEvent)
    ]
    assert neither == [], f"{len(neither)} messages neither counted nor dead-lettered"
    assert all(expected_reason.get(id(m)) is None or p in dead_at for p, m in by_position.items())

    # The valid counts are exact, and progress JSON is strict.
    progress = okrflow(env, "progress", "--shop", SHOP, "--format", "json")
    assert progress.returncode == 0, progress.stderr

    def no_constants(name: str) -> None:
        raise AssertionError(f"progress printed {name}, which is not JSON")

    report = json.loads(progress.stdout, parse_constant=no_constants)
    values = {kr["key"]: kr["value"] for kr in report["shops"][0]["objectives"][0]["key_results"]}
    sales = [e for e in valid if e["shop"] == SHOP and e["type"] == "shop.sale"]
    amounts = [e["data"]["amount"] for e in sales if isinstance(e["data"]["amount"], int)]
    assert values == {
        "orders": sum(1 for e in valid if e["shop"] == SHOP and e["type"] == "order.placed"),
        "revenue": sum(amounts),
        "buyers": len({e["data"]["customer"] for e in sales}),
        "biggest": max(amounts),
    }

    # Cardinality: no series for unplanned shops or made-up types; their events are totalled
    # under "other" for the planned shop, and not at all for the others.
    labelled = [k for k in samples if "nobody-" in k or "made.up" in k or "fuzz-" in k]
    assert labelled == []
    assert samples[f'okr_shop_events_total{{shop="{SHOP}",type="other"}}'] == 500
    engine = make_engine(database_url)
    with engine.connect() as conn:
        shops = {s for (s,) in conn.execute(sa.text("SELECT DISTINCT shop FROM shop_event_totals"))}
    engine.dispose()
    assert shops == {SHOP}
