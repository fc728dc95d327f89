"""Readiness probes shared by the worker and the exporter, run on an HTTP request thread."""

from __future__ import annotations

import asyncio
import threading
import time

from sqlalchemy import Engine, text

from okrflow.failures import one_line
from okrflow.kafkaclient import admin_client
from okrflow.settings import Settings


def database_answers(engine: Engine) -> str | None:
    """None when the database answers `SELECT 1`, else why not (one line)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return one_line(exc)
    return None


class KafkaProbe:
    """Whether the brokers answer a metadata request; the answer is reused for `ttl` seconds so
    that frequent probes do not each open a connection."""

    def __init__(self, settings: Settings, timeout: float = 3.0, ttl: float = 2.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._ttl = ttl
        self._lock = threading.Lock()
        self._checked_at = -1e9
        self._problem: str | None = None

    def problem(self) -> str | None:
        """None when Kafka answered (now, or within `ttl`), else why not."""
        with self._lock:
            if time.monotonic() - self._checked_at > self._ttl:
                self._problem = asyncio.run(self._ask())
                self._checked_at = time.monotonic()
            return self._problem

    async def _ask(self) -> str | None:
        admin = admin_client(self._settings)
        try:
            await asyncio.wait_for(admin.start(), self._timeout)
        except Exception as exc:
            return one_line(exc)
        finally:
            await admin.close()
        return None
