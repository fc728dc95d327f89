"""Failures an operator can cause: one line on stderr, no traceback, a distinct exit code
(the README's table). Each runs the real command in a subprocess."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from okrflow.exitcodes import ExitCode
from tests.integration.processes import okrflow, okrflow_env
from tests.services import free_port


def _one_line(stderr: str) -> str:
    """The single okrflow line on stderr (warnings of the start-up wait come before it)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("okrflow")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other process is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'okrflow.db'}"


def test_a_wrong_database_url(tmp_path: Path) -> None:
    env = okrflow_env(startup_deadline_seconds=2)
    for url, words in [
        ("postgrsql://u:secret@127.0.0.1/x", "postgrsql"),
        ("not a url", "not a url"),
    ]:
        result = okrflow(env, "--database-url", url, "worker")
        assert result.returncode == ExitCode.DATABASE_UNREACHABLE, result.stderr
        line = _one_line(result.stderr)
        assert words in line and "secret" not in line


def test_an_unreachable_database_is_waited_for_then_given_up(tmp_path: Path) -> None:
    url = f"postgresql://okrflow:secret@127.0.0.1:{free_port()}/okrflow"
    result = okrflow(okrflow_env(startup_deadline_seconds=3), "--database-url", url, "exporter")
    assert result.returncode == ExitCode.DATABASE_UNREACHABLE
    line = _one_line(result.stderr)
    assert "gave up after 3 s" in line and "secret" not in line
    assert result.stderr.count("waiting for the database at") >= 2  # one line a try


def test_kafka_down_worker_and_emit(sqlite_url: str, tmp_path: Path) -> None:
    env = okrflow_env(
        database_url=sqlite_url, kafka_bootstrap=f"127.0.0.1:{free_port()}",
        startup_deadline_seconds=2, worker_data_dir=tmp_path / "w",
    )  # fmt: skip
    worker = okrflow(env, "worker")
    assert worker.returncode == ExitCode.KAFKA_UNREACHABLE
    assert "cannot reach Kafka at 127.0.0.1:" in _one_line(worker.stderr)
    events = tmp_path / "events.jsonl"
    events.write_text('{"specversion": "1.0"}\n')
    emit = okrflow(env, "emit", str(events))
    assert emit.returncode == ExitCode.KAFKA_UNREACHABLE, emit.stderr
    assert "Traceback" not in emit.stderr


def test_a_port_in_use(sqlite_url: str, held_port: int, tmp_path: Path) -> None:
    env = okrflow_env(database_url=sqlite_url, startup_deadline_seconds=2)
    assert okrflow(env, "db", "upgrade").returncode == 0
    for args in (["exporter", "--port", str(held_port)], ["intake", "--port", str(held_port)]):
        result = okrflow(env, *args)
        assert result.returncode == ExitCode.PORT_IN_USE, result.stderr
        line = _one_line(result.stderr)
        assert f"port {held_port} on 127.0.0.1" in line and "already in use" in line


def test_bad_flag_and_setting_values(sqlite_url: str) -> None:
    env = okrflow_env(database_url=sqlite_url)
    cases = [
        (["--log-level", "chatty", "progress"], "--log-level / OKRFLOW_LOG_LEVEL"),
        (["exporter", "--port", "99999"], "--exporter-port / OKRFLOW_EXPORTER_PORT"),
        (["exporter", "--port", "abc"], "invalid int value"),
    ]
    for args, words in cases:
        result = okrflow(env, *args)
        assert result.returncode == ExitCode.USAGE, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert words in result.stderr
    bad_env = okrflow_env(database_url=sqlite_url, log_format="yaml")
    result = okrflow(bad_env, "progress")
    assert result.returncode == ExitCode.USAGE
    assert "OKRFLOW_LOG_FORMAT 'yaml'" in _one_line(result.stderr)
    bad_json = okrflow_env(database_url=sqlite_url, kafka_topic_configs="{not json")
    result = okrflow(bad_json, "progress")
    assert result.returncode == ExitCode.USAGE
    assert "kafka_topic_configs" in _one_line(result.stderr)


def test_a_schema_that_is_too_old(sqlite_url: str, tmp_path: Path) -> None:
    env = okrflow_env(
        database_url=sqlite_url, startup_deadline_seconds=2, worker_data_dir=tmp_path / "w"
    )
    assert okrflow(env, "db", "upgrade").returncode == 0
    with sqlite3.connect(tmp_path / "okrflow.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0002'")
    for command in (["worker"], ["exporter"], ["progress"]):
        result = okrflow(env, *command)
        assert result.returncode == ExitCode.SCHEMA_MISMATCH, (command, result.stderr)
        assert "okrflow db upgrade" in _one_line(result.stderr)


def test_version() -> None:
    from okrflow.ops.buildinfo import okrflow_version

    result = okrflow(okrflow_env(), "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"okrflow {okrflow_version()}"


def test_exit_codes_are_distinct() -> None:
    assert len({int(code) for code in ExitCode}) == len(list(ExitCode))


def test_json_logs_are_one_object_a_line(sqlite_url: str, tmp_path: Path) -> None:
    import json

    env = okrflow_env(
        database_url=sqlite_url, kafka_bootstrap=f"127.0.0.1:{free_port()}", log_format="json",
        startup_deadline_seconds=2, worker_data_dir=tmp_path / "w",
    )  # fmt: skip
    result = okrflow(env, "worker")
    assert result.returncode == ExitCode.KAFKA_UNREACHABLE
    *logs, last = result.stderr.splitlines()
    assert last.startswith("okrflow worker: cannot reach Kafka")  # the final line is for people
    records = [json.loads(line) for line in logs]
    assert records and {r["logger"] for r in records} == {"okrflow.ops.startup"}
    assert all(r["level"] == "WARNING" and "waiting for Kafka" in r["message"] for r in records)
