"""One event stream end to end: emit -> real Kafka -> worker -> database -> exporter /metrics."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.factories import clients_plan, cloud_event
from tests.integration.processes import metric_sum, okrflow, pipeline_env, running, scrape
from tests.integration.streams import produce_raw
from tests.services import free_port, wait_for

N_EVENTS = 300


def test_events_flow_to_metrics_exactly(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = pipeline_env(
        kafka_bootstrap, database_url, tmp_path, exporter_port=port, exporter_refresh_seconds=0.2
    )
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    types = ["customer.created", "order.placed", "campaign.launched"]
    events = [
        cloud_event(
            f"ev-{i}", event_type=types[i % 3], shop="salone-bella" if i % 5 else "tiktok-studio"
        )
        for i in range(N_EVENTS)
    ]
    lines = [json.dumps(e) for e in events]
    lines.insert(7, "{this is not json")  # reported by emit, the rest still sent
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("\n".join(lines) + "\n")

    plans = []
    for shop in ("salone-bella", "tiktok-studio"):
        plans.append(tmp_path / f"{shop}.yaml")
        plans[-1].write_text(clients_plan(shop))
    applied = okrflow(env, "apply", *map(str, plans))
    assert applied.returncode == 0, applied.stderr

    metrics_url = f"http://127.0.0.1:{port}/metrics"
    with (
        running(env, "worker", log=tmp_path / "worker.log") as worker,
        running(env, "exporter", log=tmp_path / "exporter.log") as exporter,
    ):
        emitted = okrflow(env, "emit", str(events_file))
        assert emitted.returncode == 2, emitted.stderr
        assert f"{events_file}:8: not JSON" in emitted.stderr
        assert f"sent {N_EVENTS} events" in emitted.stdout

        # Messages that are not valid CloudEvents must not stop or stall the worker.
        produce_raw(
            kafka_bootstrap,
            topic,
            [b"\xff\xfe", b"[]", json.dumps({**cloud_event("bad"), "shop": "NOT OK"}).encode()],
            key=b"salone-bella",
        )
        late = [json.dumps(cloud_event(f"late-{i}")) for i in range(5)]
        (tmp_path / "late.jsonl").write_text("\n".join(late) + "\n")
        assert okrflow(env, "emit", str(tmp_path / "late.jsonl")).returncode == 0

        expected = N_EVENTS + len(late)
        samples = wait_for(
            lambda: scrape(metrics_url),
            lambda s: metric_sum(s, "okr_shop_events_total") >= expected,
            timeout=90,
            what=f"{expected} events on {metrics_url} (worker log: {tmp_path / 'worker.log'})",
        )
        assert metric_sum(samples, "okr_shop_events_total") == expected
        per_shop_type = {
            (shop, t): sum(1 for e in events if e["shop"] == shop and e["type"] == t)
            for shop in ("salone-bella", "tiktok-studio")
            for t in types
        }
        per_shop_type["salone-bella", "customer.created"] += len(late)
        for (shop, t), n in per_shop_type.items():
            assert metric_sum(samples, "okr_shop_events_total", shop=shop, type=t) == n
        assert worker.poll() is None, "worker died"
        assert exporter.poll() is None, "exporter died"

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    log = (tmp_path / "worker.log").read_text()
    assert log.count("invalid event at") == 3
