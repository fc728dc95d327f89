"""okrflow.failures: each failure's exit code and one line."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError
from sqlalchemy.exc import NoSuchTableError, OperationalError

from okrflow.exitcodes import ExitCode
from okrflow.failures import (
    cannot_read_from_kafka,
    known_failure,
    one_line,
    setting_problem,
)
from okrflow.settings import Settings
from okrflow.store.schema import SchemaOutdated


def test_the_stores_schema_error_is_an_operator_error() -> None:
    assert SchemaOutdated("x").code == ExitCode.SCHEMA_MISMATCH


class _Newer(SchemaOutdated):
    pass


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (SchemaOutdated("run `okrflow db upgrade`"), (8, "run `okrflow db upgrade`")),
        (_Newer("newer"), (ExitCode.SCHEMA_MISMATCH, "newer")),
        (
            OperationalError("SELECT 1", {}, ConnectionRefusedError("refused\nat port 5432")),
            (ExitCode.DATABASE_UNREACHABLE, "database error: refused"),
        ),
        (
            KafkaConnectionError("no broker"),
            (ExitCode.KAFKA_UNREACHABLE, "Kafka error: KafkaConnectionError: no broker"),
        ),
        (NoSuchTableError("plans"), (ExitCode.FAILED, "NoSuchTableError: plans")),
        (FileNotFoundError("okrs.yaml"), (ExitCode.FAILED, "FileNotFoundError: okrs.yaml")),
    ],
)
def test_known_failures(exc: Exception, expected: tuple[int, str]) -> None:
    assert known_failure(exc) == expected


def test_anything_else_is_a_bug_to_report() -> None:
    code, line = known_failure(KeyError("shop"))
    assert code == ExitCode.FAILED
    assert line.startswith("unexpected KeyError: 'shop' (run with --log-level DEBUG")


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (ValueError("  first\nsecond  "), "first"),
        (ValueError(""), "ValueError"),
        (OperationalError("SELECT 1", {}, TimeoutError()), "TimeoutError"),
    ],
)
def test_one_line(exc: Exception, line: str) -> None:
    assert one_line(exc) == line


def test_a_bad_setting_names_its_flag_and_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(exporter_port="abc")  # type: ignore[arg-type]
    line = setting_problem(caught.value, flagged={"exporter_port"})
    assert line.startswith("--exporter-port / OKRFLOW_EXPORTER_PORT 'abc': ")
    assert "\n" not in line


def test_cannot_read_from_kafka() -> None:
    settings = Settings(kafka_bootstrap="kafka:9092")
    error = cannot_read_from_kafka(settings, KafkaConnectionError("no broker\ndetails"))
    assert error.code == ExitCode.KAFKA_UNREACHABLE
    assert (
        str(error)
        == f"cannot read {settings.events_topic} from Kafka at kafka:9092: KafkaConnectionError: no broker"
    )
