"""The worker against a broker that is late at start-up and goes away mid-run (a real broker
of its own, stopped and started again on the same data): it waits, says so in one line, and
counts every event exactly once when the broker is back."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from okrflow.devkafka import LocalKafka, LocalKafkaError
from okrflow.settings import BUNDLED_KAFKA_CONFIG
from tests.factories import clients_plan, encoded
from tests.integration.processes import okrflow, pipeline_env, running
from tests.integration.streams import applied_messages, produce_raw, totals
from tests.services import free_port, unavailable, wait_for

REPO = Path(__file__).resolve().parents[2]


def _readyz(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError as exc:
        return 0, {"error": str(exc)}


def _events(prefix: str, count: int) -> list[bytes]:
    return [encoded(event_id=f"{prefix}-{i}", event_type="customer.created") for i in range(count)]


@pytest.fixture
def own_broker(tmp_path: Path) -> LocalKafka:
    kafka = LocalKafka(
        deploy_dir=BUNDLED_KAFKA_CONFIG,
        cache_dir=REPO / ".cache" / "kafka",
        run_dir=tmp_path / "kafka",
        port=free_port(),
        controller_port=free_port(),
        heap="512m",
    )
    try:
        kafka.fetch_jars()
    except LocalKafkaError as exc:
        unavailable(f"Kafka jars unavailable: {exc}")
    return kafka


def test_worker_waits_for_a_late_broker_and_rides_out_a_restart(
    own_broker: LocalKafka, tmp_path: Path
) -> None:
    kafka = own_broker
    database_url = f"sqlite:///{tmp_path / 'okrflow.db'}"
    metrics_port = free_port()
    env = pipeline_env(
        kafka.bootstrap, database_url, tmp_path,
        worker_metrics_port=metrics_port, startup_deadline_seconds=180, events_partitions=2,
    )  # fmt: skip
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    plan = tmp_path / "okrs.yaml"
    plan.write_text(clients_plan("salone-bella"))
    applied = okrflow(env, "apply", str(plan))
    assert applied.returncode == 0, applied.stderr
    log = tmp_path / "worker.log"
    try:
        with running(env, "worker", log=log) as worker:
            # Started before the broker: it waits and says where it is waiting, once a try.
            wait_for(
                log.read_text, lambda text: f"waiting for Kafka at {kafka.bootstrap}" in text,
                60, "the worker's waiting line",
            )  # fmt: skip
            assert worker.poll() is None
            kafka.start(timeout=120)
            produce_raw(kafka.bootstrap, topic, _events("before", 300), key=b"salone-bella")
            wait_for(lambda: applied_messages(database_url, topic), lambda n: n == 300, 120,
                     "the first 300 events applied")  # fmt: skip
            _, body = wait_for(lambda: _readyz(metrics_port), lambda r: r[0] == 200, 60,
                                    "/readyz to answer 200")  # fmt: skip
            assert body["status"] == "ready"
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                metrics = resp.read().decode()
            assert 'okrflow_build_info{component="worker",' in metrics
            assert "process_resident_memory_bytes" in metrics
            assert 'okrflow_events_total{outcome="counted"} 300.0' in metrics

            # The broker goes away mid-run: the worker stays up and stops being ready.
            kafka.stop()
            _, body = wait_for(lambda: _readyz(metrics_port), lambda r: r[0] == 503, 60,
                                    "/readyz to report the broker gone")  # fmt: skip
            assert "kafka" in body["problems"]  # type: ignore[operator]
            assert worker.poll() is None, log.read_text()[-3000:]

            kafka.start(timeout=120)
            produce_raw(kafka.bootstrap, topic, _events("after", 200), key=b"salone-bella")
            wait_for(lambda: applied_messages(database_url, topic), lambda n: n == 500, 180,
                     "all 500 events applied after the restart")  # fmt: skip
            assert worker.poll() is None, log.read_text()[-3000:]
            # Exactly once across the outage: every event counted once.
            assert totals(database_url)[("salone-bella", "customer.created")] == 500
            wait_for(lambda: _readyz(metrics_port)[0], lambda s: s == 200, 60, "ready again")
        assert worker.returncode == 0, log.read_text()[-3000:]
        assert "Traceback" not in log.read_text()
        assert "\x1b[" not in log.read_text()  # no terminal escapes in the log
    finally:
        kafka.stop()


def test_a_worker_beyond_the_partitions_is_ready_and_idle(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """More workers than partitions: the extra one is ready with no partitions, standing by."""
    database_url = f"sqlite:///{tmp_path / 'okrflow.db'}"
    ports = [free_port(), free_port()]
    base = pipeline_env(kafka_bootstrap, database_url, tmp_path, events_partitions=1)
    envs = [{**base, "OKRFLOW_WORKER_METRICS_PORT": str(port)} for port in ports]
    with (
        running(envs[0], "worker", log=tmp_path / "w0.log"),
        running(envs[1], "worker", log=tmp_path / "w1.log"),
    ):
        answers = wait_for(
            lambda: [_readyz(port) for port in ports],
            lambda rs: all(status == 200 for status, _ in rs)
            and sorted(len(body["partitions"]) for _, body in rs) == [0, 1],  # type: ignore[arg-type]
            90, "both workers ready, one with the partition, one idle",
        )  # fmt: skip
        assert {body["status"] for _, body in answers} == {"ready"}
