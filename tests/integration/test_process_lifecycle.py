"""Every process okrflow starts dies with its parent, at every moment of its life, on the real
broker and both databases: the supervisor of `okrflow worker --processes 2` is killed with
SIGKILL at moments from the instant its first child appears to well after it counts, while
events flow; within 10 s nothing it started is alive (found through /proc, by a mark in the
environment that every descendant inherits), and after a restart the counts are exact. And a
worker asked to stop while its broker is gone exits within OKRFLOW_WORKER_STOP_SECONDS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from okrflow.devkafka import LocalKafka
from tests.factories import clients_plan, encoded
from tests.integration.processes import okrflow, pipeline_env, running
from tests.integration.streams import applied_messages, produce_raw
from tests.integration.test_broker_outage import own_broker  # noqa: F401 (a fixture)
from tests.integration.test_crash_safety import PLAN, CrashStream, _check_results
from tests.services import wait_for

# Seconds after the supervisor's first child appears; 0 is "at once".
KILL_AFTER = (0.0, 0.1, 0.3, 0.6, 1.0, 3.0, 20.0)
ORPHAN_SECONDS = 10.0


def _marked(mark: str) -> list[int]:
    """Live processes whose environment holds `mark` (zombies are dead: not counted)."""
    found = []
    needle = f"OKRFLOW_TEST_MARK={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone, or not ours to read
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def test_kill_9_of_the_supervisor_leaves_nothing_running(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    env = pipeline_env(
        kafka_bootstrap, database_url, tmp_path, batch_size=500, kafka_session_timeout=6
    )
    stream = CrashStream(24_000, seed=31)
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN)
    assert okrflow(env, "apply", str(plan)).returncode == 0
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    produce_raw(kafka_bootstrap, topic, stream.raw_invalid, key=b"shop-0")
    total = len(stream.lines) + len(stream.raw_invalid)
    chunk = -(-len(stream.lines) // (len(KILL_AFTER) + 1))  # the last after the kills
    for i, delay in enumerate(KILL_AFTER):
        # Events keep flowing: each supervisor finds a new share waiting, and is killed while
        # it counts it (or, for the short delays, before its workers have started).
        events = tmp_path / f"events-{i}.jsonl"
        events.write_text("\n".join(stream.lines[i * chunk : (i + 1) * chunk]) + "\n")
        assert okrflow(env, "emit", str(events), timeout=300).returncode == 0
        mark = f"{os.getpid()}-{i}-{os.urandom(3).hex()}"
        log = tmp_path / f"supervisor-{i}.log"
        with log.open("wb") as out:
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "okrflow", "worker", "--processes", "2"],
                env={**env, "OKRFLOW_TEST_MARK": mark}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_for(
                lambda pid=supervisor.pid: _children(pid), bool, 60,
                f"the supervisor's first child ({i})",
            )  # fmt: skip
            time.sleep(delay)
            os.kill(supervisor.pid, signal.SIGKILL)
            supervisor.wait(10)
            left = wait_for(
                lambda mark=mark: _marked(mark), lambda pids: not pids, ORPHAN_SECONDS,
                f"no process of supervisor {i} (killed {delay} s after its first child) alive",
            )  # fmt: skip
            assert left == []
        finally:
            for pid in _marked(mark):  # only if the assertion above failed
                os.kill(pid, signal.SIGKILL)
    applied = applied_messages(database_url, topic)
    assert 0 < applied < total  # the supervisors counted, and were killed while counting
    events = tmp_path / "events-last.jsonl"
    events.write_text("\n".join(stream.lines[len(KILL_AFTER) * chunk :]) + "\n")
    assert okrflow(env, "emit", str(events), timeout=300).returncode == 0
    with running(env, "worker", "--processes", "2", log=tmp_path / "last.log") as worker:
        wait_for(
            lambda: applied_messages(database_url, topic), lambda n: n == total, 180,
            "every message applied after the restart",
        )  # fmt: skip
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    _check_results(env, database_url, kafka_bootstrap, stream)


def test_sigterm_with_the_broker_gone_exits_within_the_stop_bound(
    own_broker: LocalKafka,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    kafka = own_broker
    database_url = f"sqlite:///{tmp_path / 'okrflow.db'}"
    kafka.start(timeout=120)
    stop_seconds = 4.0
    env = pipeline_env(
        kafka.bootstrap, database_url, tmp_path,
        worker_stop_seconds=stop_seconds,
    )  # fmt: skip
    plan = tmp_path / "okrs.yaml"
    plan.write_text(clients_plan("salone-bella"))
    assert okrflow(env, "apply", str(plan)).returncode == 0
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    try:
        with running(env, "worker", log=tmp_path / "worker.log") as worker:
            produce_raw(
                kafka.bootstrap, topic,
                [encoded(event_id=f"e-{i}", event_type="customer.created") for i in range(50)],
                key=b"salone-bella",
            )  # fmt: skip
            wait_for(lambda: applied_messages(database_url, topic), lambda n: n == 50, 120, "50")
            kafka.stop()
            worker.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = worker.wait(stop_seconds + 10)
            took = time.monotonic() - started
        assert code in (0, 11), (code, (tmp_path / "worker.log").read_text()[-2000:])
        assert took < stop_seconds + 3, took
    finally:
        kafka.stop()
