"""One log format: JSON lines for machines; aiokafka's repeated errors held back."""

from __future__ import annotations

import json
import logging

import pytest

from okrflow.ops.logs import JsonFormatter, RepeatFilter


def _record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_json_lines_carry_time_level_logger_message_and_exception() -> None:
    formatter = JsonFormatter()
    line = json.loads(formatter.format(_record("okrflow.x", "took %d ms", 12)))
    assert line["level"] == "ERROR" and line["logger"] == "okrflow.x"
    assert line["message"] == "took 12 ms" and line["time"].endswith("Z")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys

        record = logging.LogRecord("a", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(formatter.format(record))
    assert line["exc_type"] == "ValueError" and "boom" in line["exc"]
    assert "\n" not in formatter.format(record)  # one line, whatever the message holds


def test_repeats_of_one_kind_pass_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("okrflow.ops.logs.time.monotonic", lambda: clock[0])
    repeat = RepeatFilter("aiokafka", interval=30)
    passed = [repeat.filter(_record("aiokafka", "Unable connect to %s", "b1")) for _ in range(50)]
    assert passed == [True] + [False] * 49
    assert repeat.filter(_record("aiokafka", "another kind"))  # a different message passes
    assert repeat.filter(_record("okrflow.worker", "Unable connect to %s", "b1"))  # not aiokafka
    clock[0] += 31
    record = _record("aiokafka", "Unable connect to %s", "b1")
    assert repeat.filter(record)
    assert record.getMessage() == "Unable connect to b1 (and 49 more like it in the last 30 s)"
