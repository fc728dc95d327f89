"""`okrflow demo` (what `make run` runs), end to end on a real broker: two shops with a
backdated history, a status line from the database, and a child that dies stops it."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer

from okrflow.demo import DEMO_TOPIC, demo_settings, stalled
from okrflow.devkafka import LocalKafka, LocalKafkaError
from okrflow.settings import BUNDLED_KAFKA_CONFIG, Settings
from tests.integration.processes import okrflow, okrflow_env
from tests.integration.streams import produce_raw
from tests.services import free_port, unavailable

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LocalKafka]]:
    """A broker where the demo looks for one (<cache>/broker-<port>), so the demo reuses it."""
    cache = tmp_path_factory.mktemp("demo-cache") / "kafka"
    cache.mkdir()
    (cache / "libs").symlink_to(REPO / ".cache" / "kafka" / "libs")  # the jars, fetched once
    port = free_port()
    kafka = LocalKafka(
        deploy_dir=BUNDLED_KAFKA_CONFIG, cache_dir=cache, run_dir=cache / f"broker-{port}",
        port=port, controller_port=free_port(), heap="512m",
    )  # fmt: skip
    try:
        kafka.start(timeout=120)
    except LocalKafkaError as exc:
        unavailable(f"local Kafka did not start: {exc}")
    yield cache, kafka
    kafka.stop()


def _env(cache: Path, kafka: LocalKafka, tmp_path: Path, **more: str | int) -> dict[str, str]:
    return okrflow_env(
        database_url=f"sqlite:///{tmp_path / 'okrflow.db'}", kafka_bootstrap=kafka.bootstrap,
        kafka_cache_dir=cache, exporter_port=free_port(), **more,
    )  # fmt: skip


def test_demo_shows_both_shops_with_a_meaningful_status(
    demo_kafka: tuple[Path, LocalKafka], tmp_path: Path
) -> None:
    cache, kafka = demo_kafka
    env = _env(cache, kafka, tmp_path)
    result = okrflow(env, "demo", "--seconds", "25", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Kafka: already running, reused" in out
    backdated = int(re.search(r"(\d+) backdated events emitted", out).group(1))  # type: ignore[union-attr]
    assert backdated > 100
    lines = [line for line in out.splitlines() if " counted " in line]
    assert lines, out
    last = lines[-1]
    assert int(last.split(" counted ")[1].split()[0].replace(",", "")) >= backdated
    # The status line and `okrflow progress` read the same database: they agree.
    progress = okrflow(env, "progress", "--format", "json")
    assert progress.returncode == 0, progress.stderr
    report = json.loads(progress.stdout)
    shops = {s["shop"]: s for s in report["shops"]}
    assert set(shops) == {"salone-bella", "studio-lumen"}
    statuses = [o["status"] for s in shops.values() for o in s["objectives"]]
    # Backdated history near the pace: the first screen is not a wall of off_track.
    assert "off_track" not in statuses and "not_started" not in statuses, statuses
    for shop in shops.values():
        for o in shop["objectives"]:
            assert f"{o['key']} " in last
    assert "Traceback" not in result.stderr


def test_demo_stops_when_a_child_dies(demo_kafka: tuple[Path, LocalKafka], tmp_path: Path) -> None:
    cache, kafka = demo_kafka
    with socket.socket() as held:  # the worker's metrics port is taken: the worker exits 7
        held.bind(("127.0.0.1", 0))
        held.listen()
        env = _env(cache, kafka, tmp_path, worker_metrics_port=held.getsockname()[1])
        result = okrflow(env, "demo", "--seconds", "120", timeout=180)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the worker exited with code 7; its log:" in result.stderr
    assert "demo stopped" in result.stdout
    assert "Traceback" not in result.stderr


async def _foreign_member(bootstrap: str, group: str, topic: str) -> AIOKafkaConsumer:
    """A consumer of someone else's, in `group`, holding every partition of `topic`."""
    await asyncio.to_thread(produce_raw, bootstrap, topic, [b"{}"], b"x")  # the topic exists
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    deadline = asyncio.get_running_loop().time() + 60
    while not consumer.assignment():  # bounded by the deadline
        assert asyncio.get_running_loop().time() < deadline, "the foreign member got nothing"
        await consumer.getmany(timeout_ms=200)
    return consumer


def test_demo_counts_beside_a_foreign_member_of_group_okrflow(
    demo_kafka: tuple[Path, LocalKafka], tmp_path: Path
) -> None:
    """A worker of someone else's holds every partition of okr.events in group okrflow (the
    defaults): the demo, in a group and topic of its own, counts all the same."""
    cache, kafka = demo_kafka
    env = _env(cache, kafka, tmp_path)

    async def run() -> tuple[int, str, str]:
        member = await _foreign_member(kafka.bootstrap, "okrflow", "okr.events")
        try:
            demo = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "okrflow", "demo", "--seconds", "25", env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(demo.communicate(), 180)
            assert member.assignment()  # it held its partitions throughout
            return demo.returncode or 0, out.decode(), err.decode()
        finally:
            await member.stop()

    code, out, err = asyncio.run(run())
    assert code == 0, out + err
    assert "topic okr.demo.events, group okrflow-demo" in out
    assert [line for line in out.splitlines() if " counted " in line], out
    assert "nothing counted after" not in out


def test_a_stalled_demo_names_who_holds_the_partitions(
    demo_kafka: tuple[Path, LocalKafka], tmp_path: Path
) -> None:
    """The diagnosis the demo prints when it counts nothing for 30 s: here another member of
    the demo's own group holds every partition of its topic."""
    cache, kafka = demo_kafka
    settings = demo_settings(
        Settings(kafka_bootstrap=kafka.bootstrap, kafka_cache_dir=cache)  # type: ignore[call-arg]
    )

    async def run() -> str:
        member = await _foreign_member(kafka.bootstrap, settings.consumer_group, DEMO_TOPIC)
        try:
            children = SimpleNamespace(logs={"worker": tmp_path / "worker.log"})
            return await asyncio.to_thread(stalled, settings, kafka, children, 31.0)  # type: ignore[arg-type]
        finally:
            await member.stop()

    line = asyncio.run(run())
    assert line.startswith(
        "nothing counted after 31 s: group okrflow-demo (Stable) has 1 member(s)"
    )
    assert "(partitions 0,1,2,3,4,5)" in line, line
    assert str(tmp_path / "worker.log") in line
