"""`okrflow kafka start|status|stop` against a real broker, idempotent both ways."""

from __future__ import annotations

import shutil
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
    assert down.returncode == 3
    assert "not running" in down.stdout
