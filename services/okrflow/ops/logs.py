"""One log format for every okrflow process: text for people, JSON lines for machines.

okrflow configures the root logger once (`setup_logging`); faust's worker and uvicorn are told
not to install their own handlers, so their records come out in the same format.

The JSON formatter is a few lines of the standard library (one object a line: time, level,
logger, message, and the exception's type and text when there is one) rather than a dependency.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Literal

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: `time` (UTC, ISO 8601), `level`, `logger`, `message`, and
    `exc_type`/`exc` when the record carries an exception."""

    def format(self, record: logging.LogRecord) -> str:
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, object] = {
            "time": f"{moment}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class RepeatFilter(logging.Filter):
    """Lets one record of a kind through per `interval` seconds from the loggers named
    `prefix*`, and says how many it held back.

    While a broker is down, aiokafka logs the same connection error about ten times a second;
    a ten-minute outage would be sixty thousand lines. A kind is (logger, message template).
    """

    def __init__(self, prefix: str, interval: float = 30.0) -> None:
        super().__init__()
        self._prefix = prefix
        self._interval = interval
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefix) or record.levelno >= logging.CRITICAL:
            return True
        kind = (record.name, record.msg)
        now = time.monotonic()
        last, held = self._seen.get(kind, (-self._interval, 0))
        if now - last < self._interval:
            self._seen[kind] = (last, held + 1)
            return False
        if len(self._seen) > 1000:  # bounded: forget old kinds
            self._seen.clear()
        self._seen[kind] = (now, 0)
        if held:
            record.msg = (
                f"{record.msg} (and {held} more like it in the last {self._interval:.0f} s)"
            )
        return True


def setup_logging(level: str, fmt: Literal["text", "json"]) -> None:
    """Log to stderr at `level` in `fmt`, replacing any handler installed before."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RepeatFilter("aiokafka"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every migration check at INFO; okrflow prints what matters itself.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
