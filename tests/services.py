"""Real services for tests: a Kafka broker, PostgreSQL, SQLite; and the skip-or-fail rule.

Under CI (`OKRFLOW_REQUIRE_SERVICES=1`) a missing service fails the test instead of skipping.
Tests read the environment here only: this is test harness, not okrflow configuration.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

import pytest

T = TypeVar("T")

REQUIRE_SERVICES = os.environ.get("OKRFLOW_REQUIRE_SERVICES", "") not in ("", "0", "false")


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when services are required."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str) -> T:
    """Poll `probe` until `done(value)`, at most `timeout` seconds; fail with the last value."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last value: {value!r}")
        time.sleep(0.1)
        value = probe()
    return value
