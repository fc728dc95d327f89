"""The time as the worker's sink reads it, and how it waits: the system's, or a test's.

The sink (okrflow.ingest.sink), its housekeeping and the counting helper's worker side take a
`Clock` instead of calling `datetime.now`, `time.monotonic` or `time.time` themselves, so a
unit test can drive them (tests/unit/ingest/test_sink.py)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """The system's time; a test subclasses it."""

    def now(self) -> datetime:
        """The time an event id is seen at, and a plan's day is judged by (aware, UTC)."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds, for how long things take and how long ago they were done."""
        return time.monotonic()

    def time(self) -> float:
        """Unix time, to compare with Kafka's record timestamps."""
        return time.time()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait `seconds`, or until `stop` is set: whether it is."""
        return stop.wait(seconds)


SYSTEM_CLOCK = Clock()
