"""`okrflow kafka start|status|stop` against a real broker, idempotent both ways; and never
"started" when another broker, or anything else, holds the port."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from tests.conftest import REPO
from tests.integration.processes import okrflow, okrflow_env
from tests.services import free_port, unavailable


def test_start_twice_status_stop_twice(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        unavailable("java is not installed (needed for the Kafka broker)")
    port = free_port()
    env = okrflow_env(
        kafka_bootstrap=f"127.0.0.1:{port}",
        kafka_controller_port=free_port(),
        kafka_cache_dir=REPO / ".cache" / "kafka",
        kafka_run_dir=tmp_path / "broker",
    )
    try:
        first = okrflow(env, "kafka", "start")
        assert first.returncode == 0, first.stderr
        assert f"Kafka started on 127.0.0.1:{port}" in first.stdout

        second = okrflow(env, "kafka", "start")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout

        status = okrflow(env, "kafka", "status")
        assert status.returncode == 0
        assert "running, answering" in status.stdout
    finally:
        stop = okrflow(env, "kafka", "stop")
    assert stop.returncode == 0
    assert "stopped" in stop.stdout

    again = okrflow(env, "kafka", "stop")
    assert again.returncode == 0
    assert "not running: nothing to stop" in again.stdout

    down = okrflow(env, "kafka", "status")
    assert down.returncode == 12  # ExitCode.NOT_RUNNING
    assert "not running" in down.stdout


def _env(port: int, controller: int, run_dir: Path) -> dict[str, str]:
    return okrflow_env(
        kafka_bootstrap=f"127.0.0.1:{port}",
        kafka_controller_port=controller,
        kafka_cache_dir=REPO / ".cache" / "kafka",
        kafka_run_dir=run_dir,
    )


def test_start_with_another_broker_on_the_port_says_so_and_starts_nothing(
    tmp_path: Path,
) -> None:
    if shutil.which("java") is None:
        unavailable("java is not installed (needed for the Kafka broker)")
    port = free_port()
    theirs = _env(port, free_port(), tmp_path / "their-broker")
    ours = _env(port, free_port(), tmp_path / "our-broker")  # another state folder
    try:
        assert okrflow(theirs, "kafka", "start").returncode == 0
        started = okrflow(ours, "kafka", "start")
        assert started.returncode == 7, started  # ExitCode.PORT_IN_USE
        assert "started" not in started.stdout + started.stderr
        lines = started.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in started.stderr
        assert f"127.0.0.1:{port} is already in use by another Kafka broker" in lines[0]
        assert str(tmp_path / "their-broker") in lines[0]  # its config names its folder
        assert not (tmp_path / "our-broker" / "kafka.pid").exists()  # no JVM of ours left

        status = okrflow(ours, "kafka", "status")
        assert status.returncode == 12, status
        assert "not running; the port is held by another Kafka broker" in status.stdout
        stop = okrflow(ours, "kafka", "stop")
        assert "not running: nothing to stop" in stop.stdout  # theirs is left alone
        assert okrflow(theirs, "kafka", "status").returncode == 0
    finally:
        okrflow(theirs, "kafka", "stop")


def test_start_with_a_plain_listener_on_the_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        env = _env(port, free_port(), tmp_path / "broker")
        started = okrflow(env, "kafka", "start")
    assert started.returncode == 7, started
    assert "started" not in started.stdout
    assert "not okrflow's broker" in started.stderr and str(os.getpid()) in started.stderr
