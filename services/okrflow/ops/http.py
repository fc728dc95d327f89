"""The small HTTP server of the worker and the exporter: /metrics, /healthz, /readyz, and the
exporter's pages (prefix routes that see the request: path, query and headers).

Standard library `ThreadingHTTPServer`, spoken as HTTP/1.1 (keep-alive, Content-Length on every
answer), and gzip when the client asks for it (Prometheus does). The intake, which serves real
traffic, runs on uvicorn instead; these two serve a scraper and a kubelet, which this covers
without adding an ASGI server to the worker's event loop.

Its limits (`OpsLimits`; docs/operations.md, "HTTP limits"): a connection idle for `timeout`
between requests is closed; a request's head must arrive within `head_seconds` of its first
byte (of the connection's opening, for its first request) and its body (the routes take none: it is read and thrown away, up to 64 KiB) within
`body_seconds`; heads are judged strictly (okrflow.ops.framing) and refused with 400 and close;
past `max_connections` connection threads a new connection gets 503. A client that hangs up
is one log line, not a traceback.

Here: the server (its connection cap) and `OpsServer`. A connection's requests are
`ops.http_handler`'s, what a route sees and answers `ops.routes`', listening `ops.listen`'s.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from okrflow.ops.framing import closing_answer
from okrflow.ops.http_handler import handler_class
from okrflow.ops.listen import listen_error
from okrflow.ops.routes import PrefixRoute, Route
from okrflow.ops.routes import Reply as Reply  # re-exported: ingest/ imports it here
from okrflow.ops.routes import json_reply as json_reply  # re-exported: ingest/health.py
from okrflow.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpsLimits:
    """The server's limits; the defaults are the settings' (OKRFLOW_OPS_HTTP_*, `ops_limits`)."""

    head_seconds: float = 10.0
    body_seconds: float = 10.0
    max_connections: int = 256


def ops_limits(settings: Settings) -> OpsLimits:
    return OpsLimits(
        head_seconds=settings.ops_http_header_timeout_seconds,
        body_seconds=settings.ops_http_body_timeout_seconds,
        max_connections=settings.ops_http_max_connections,
    )


# A connection refused at the cap is logged at most once per this many seconds.
CAP_LOG_SECONDS = 10.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many scrapers and probes at once must not be refused by a short listen backlog.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
        max_connections: int,
    ) -> None:  # fmt: skip
        self._slots = threading.BoundedSemaphore(max_connections)
        self._max_connections = max_connections
        self._cap_logged = -CAP_LOG_SECONDS
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection, or 503 and close past `max_connections` threads."""
        if not self._slots.acquire(blocking=False):
            now = time.monotonic()
            if now - self._cap_logged >= CAP_LOG_SECONDS:
                self._cap_logged = now
                logger.warning(
                    "HTTP server on port %d: %d connections open, refusing more with 503 "
                    "(OKRFLOW_OPS_HTTP_MAX_CONNECTIONS)",
                    self.server_address[1], self._max_connections,
                )  # fmt: skip
            try:
                request.settimeout(0.5)  # never block the accepting thread on a slow client
                request.sendall(
                    closing_answer(
                        503, "Service Unavailable", "too many connections", "retry-after: 1"
                    )
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line for a client that hung up; a logged traceback (not stderr) else."""
        exc = sys.exc_info()[1]
        where = client_address[0] if isinstance(client_address, tuple) else client_address
        if isinstance(exc, (ConnectionError, TimeoutError)):
            logger.info("HTTP client %s hung up before its answer was sent (%s)", where, exc)
        else:
            logger.exception("HTTP request from %s failed", where)


class OpsServer:
    """Serves `routes` (path -> reply, called on a request thread) on host:port in a thread."""

    def __init__(
        self, host: str, port: int, routes: Mapping[str, Route], *, what: str, setting: str,
        timeout: float = 30.0, prefixes: Mapping[str, PrefixRoute] | None = None,
        limits: OpsLimits | None = None,
    ) -> None:  # fmt: skip
        """`prefixes`: routes for every path starting with a prefix (longest first), tried
        when no exact route matches; they get the `Request`. `timeout`: how long a connection
        may sit idle between requests (and a write may stall); `limits`: the rest."""
        limits = limits or OpsLimits()
        handler = handler_class(
            routes, timeout, prefixes or {}, limits.head_seconds, limits.body_seconds
        )
        self._server = bind_http(
            host, port, handler, what=what, setting=setting,
            max_connections=limits.max_connections,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def bind_http(
    host: str,
    port: int,
    handler: type[BaseHTTPRequestHandler],
    *,
    what: str,
    setting: str,
    max_connections: int = OpsLimits.max_connections,
) -> ThreadingHTTPServer:
    """The server bound to host:port, or OperatorError with one line naming the setting."""
    try:
        return _Server((host, port), handler, max_connections)
    except OSError as exc:
        raise listen_error(exc, host, port, what, setting) from None
