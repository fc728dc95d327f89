"""`okrflow worker --processes 2` on the real broker and both databases: the two processes share
the group's partitions and count every event exactly once; a process killed with SIGKILL is
restarted by the supervisor and the counts stay exact; SIGTERM drains both and exits 0; a
process's operator error stops the supervisor with that code and one line."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.integration.processes import okrflow, pipeline_env, running
from tests.integration.streams import applied_messages
from tests.integration.test_crash_safety import CrashStream, _check_results, _start
from tests.services import wait_for

STARTED = re.compile(r"worker process (\d+) started \(pid (\d+)\)")


def _two_free_ports() -> int:
    """A port P with P and P + 1 both free on the loopback."""
    for _ in range(100):  # bounded
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two consecutive free ports")


def _readyz(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError as exc:
        return 0, {"error": str(exc)}


def _partitions(body: dict[str, object]) -> list[int]:
    value = body.get("partitions")
    return [int(p) for p in value] if isinstance(value, list) else []


def _split(answers: list[tuple[int, dict[str, object]]]) -> bool:
    """Both ready, each with some partitions, none twice."""
    if any(status != 200 for status, _ in answers):
        return False
    shares = [set(_partitions(body)) for _, body in answers]
    return all(shares) and not shares[0] & shares[1]


def _started(log: Path) -> list[tuple[int, int]]:
    """(process index, pid) of every start the supervisor logged, in order."""
    return [(int(i), int(pid)) for i, pid in STARTED.findall(log.read_text(errors="replace"))]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_two_processes_count_exactly_once_through_a_kill_9(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    port = _two_free_ports()
    env = pipeline_env(
        kafka_bootstrap, database_url, tmp_path,
        batch_size=1000, kafka_session_timeout=6, worker_metrics_port=port,
    )  # fmt: skip
    stream = CrashStream(20_000, seed=23)
    total = _start(env, stream, tmp_path, kafka_bootstrap)
    topic = env["OKRFLOW_EVENTS_TOPIC"]
    log = tmp_path / "worker.log"
    with running(env, "worker", "--processes", "2", log=log) as supervisor:
        # Each process answers on its own port, ready with its own share of the partitions.
        # The first process may be ready with every partition before the second joins:
        # wait for the group to settle on a split of the six between the two.
        ready = wait_for(
            lambda: [_readyz(p) for p in (port, port + 1)], _split, 120,
            "both processes ready with disjoint shares of the partitions",
        )  # fmt: skip
        wait_for(
            lambda: applied_messages(database_url, topic),
            lambda n: n >= 0.3 * total,
            120,
            "30% applied",
        )
        starts = _started(log)
        assert sorted(i for i, _ in starts) == [0, 1]
        victim = dict(starts)[1]
        assert _alive(victim)
        assert {p.name for p in (tmp_path / "worker").iterdir()} >= {"process-0", "process-1"}
        subprocess.run(["kill", "-9", str(victim)], check=True)
        restarted = wait_for(
            lambda: _started(log), lambda s: len(s) == 3, 60, "process 1 restarted"
        )
        assert restarted[2][0] == 1 and restarted[2][1] != victim
        wait_for(
            lambda: applied_messages(database_url, topic),
            lambda n: n == total,
            180,
            "every message applied",
        )
        assert supervisor.poll() is None
        survivor = dict(starts)[0]
        children = [survivor, restarted[2][1]]
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(90) == 0
        assert not any(_alive(pid) for pid in children)
    shares = [set(_partitions(body)) for _, body in ready]
    assert not shares[0] & shares[1]
    assert shares[0] | shares[1] == set(range(6))  # OKRFLOW_EVENTS_PARTITIONS' default
    _check_results(env, database_url, kafka_bootstrap, stream)


def test_an_operator_error_in_one_process_stops_all_with_its_code(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    port = _two_free_ports()
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path, worker_metrics_port=port)
    with socket.socket() as taken:  # process 1's metrics port is busy
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        result = okrflow(env, "worker", "--processes", "2", timeout=180)
    assert result.returncode == 7, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("okrflow worker:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("okrflow worker: worker process 1 of 2: ")
    assert str(port + 1) in lines[0]
    assert "Traceback" not in result.stderr
    assert len(STARTED.findall(result.stderr)) == 2  # not restarted
