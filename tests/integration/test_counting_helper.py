"""The worker's counting helper process on the real broker and both databases: killed with
SIGKILL mid-stream, the worker counts its batches itself (one warning) and every event
still counts exactly once; the worker killed with SIGKILL leaves no helper behind; with
OKRFLOW_WORKER_COUNTING_PROCESS=false there is no helper and the counts are the same."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.integration.processes import pipeline_env, running
from tests.integration.streams import applied_messages
from tests.integration.test_crash_safety import CrashStream, _check_results, _start
from tests.integration.test_worker_processes import _alive
from tests.perf.procs import tree
from tests.services import wait_for

FAILED = "the counting helper process failed"


def _helpers(worker: int) -> list[int]:
    """The worker's helper processes (spawned by multiprocessing)."""
    out = []
    for child in tree(worker)[1:]:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            out.append(child)
    return out


def test_a_killed_helper_loses_nothing_and_the_worker_counts_itself(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path, batch_size=1000)
    stream = CrashStream(12_000, seed=5)
    total = _start(env, stream, tmp_path, kafka_bootstrap)
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    log = tmp_path / "worker.log"
    with running(env, "worker", log=log) as worker:
        wait_for(
            lambda: applied_messages(database_url, topic), lambda n: n >= 0.2 * total, 120,
            "20% applied",
        )  # fmt: skip
        helpers = _helpers(worker.pid)
        assert len(helpers) == 1, helpers
        subprocess.run(["kill", "-9", str(helpers[0])], check=True)
        wait_for(
            lambda: applied_messages(database_url, topic), lambda n: n == total, 180,
            "every message applied",
        )  # fmt: skip
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(60)
    text = log.read_text(errors="replace")
    # 0: drained. 11: still stopping after OKRFLOW_WORKER_STOP_SECONDS, so it exited at once
    # (seen once under a full suite's load after its helper had been killed; safe: the
    # database's offsets are the truth, and the counts are checked below).
    assert code == 0 or (code == 11 and "OKRFLOW_WORKER_STOP_SECONDS" in text), code
    assert text.count(FAILED) == 1, text[-3000:]
    assert "Traceback" not in text
    _check_results(env, database_url, kafka_bootstrap, stream)


def test_a_killed_worker_leaves_no_helper(kafka_bootstrap: str, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'okrflow.db'}"  # the helper does not touch it
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path)
    stream = CrashStream(2_000, seed=6)
    total = _start(env, stream, tmp_path, kafka_bootstrap)
    with running(env, "worker", log=tmp_path / "worker.log") as worker:
        wait_for(
            lambda: applied_messages(database_url, env["OKRFLOW_EVENTS_TOPIC"]),
            lambda n: n == total, 120, "every message applied",
        )  # fmt: skip
        helpers = _helpers(worker.pid)
        assert len(helpers) == 1, helpers
        worker.kill()
        worker.wait(30)
    wait_for(lambda: _alive(helpers[0]), lambda alive: not alive, 30, "the helper gone")


def test_without_a_helper_the_counts_are_the_same(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    env = pipeline_env(
        kafka_bootstrap, database_url, tmp_path, batch_size=1000,
        worker_counting_process="false",
    )  # fmt: skip
    stream = CrashStream(6_000, seed=7)
    total = _start(env, stream, tmp_path, kafka_bootstrap)
    with running(env, "worker", log=tmp_path / "worker.log") as worker:
        wait_for(
            lambda: applied_messages(database_url, env["OKRFLOW_EVENTS_TOPIC"]),
            lambda n: n == total, 180, "every message applied",
        )  # fmt: skip
        assert _helpers(worker.pid) == []
    _check_results(env, database_url, kafka_bootstrap, stream)
