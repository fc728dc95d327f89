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
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.ops.framing import closing_answer, head_problem
from okrflow.ops.httpio import DeadlineReader, HeadTooLarge, read_head
from okrflow.settings import Settings

logger = logging.getLogger(__name__)

# Bodies smaller than this go uncompressed even when gzip is accepted: not worth the CPU.
GZIP_MIN_BYTES = 1024


@dataclass(frozen=True)
class Reply:
    status: int
    body: Sequence[bytes]
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()  # more response headers (Set-Cookie, ...)


@dataclass(frozen=True)
class Request:
    """What a prefix route sees: the decoded path, the query (first value of each name) and
    the request headers (names in lower case)."""

    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


def text(status: int, line: str) -> Reply:
    return Reply(status, [line.encode() + b"\n"])


def json_reply(status: int, body: dict[str, object]) -> Reply:
    """A JSON object as the answer (the probes' bodies)."""
    return Reply(status, [json.dumps(body).encode() + b"\n"], "application/json")


Route = Callable[[], Reply]
PrefixRoute = Callable[[Request], Reply]


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


# A request body is read and thrown away up to this size (the routes take none); larger: 413.
MAX_BODY_BYTES = 64 * 1024
# After a refusal that closes, what the client still sends is read for up to this long and
# this many bytes, so it reads the answer instead of a reset.
LINGER_SECONDS = 5.0
LINGER_BYTES = 16 * 1024 * 1024
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


def _handler(
    routes: Mapping[str, Route], idle: float, prefixes: Mapping[str, PrefixRoute],
    limits: OpsLimits,
) -> type[BaseHTTPRequestHandler]:  # fmt: skip
    # Longest prefix first: "/shops/" wins over "/".
    ordered = sorted(prefixes.items(), key=lambda item: -len(item[0]))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = idle  # the socket timeout of each write (reads have their deadlines)

        def setup(self) -> None:
            super().setup()
            self.rfile.close()
            self.reader = DeadlineReader(self.connection)
            self.requests = 0  # requests begun on this connection
            self.rfile = io.BufferedReader(self.reader)

        def handle_one_request(self) -> None:
            """One request, read against its deadlines and judged before http.server parses
            it (the standard library's own version waits per read, and takes bare LF,
            obs-fold and any HTTP version)."""
            self.close_connection = True
            if self.requests:  # keep-alive: idle until the next request's first byte
                self.reader.idle(idle, limits.head_seconds)
            else:  # a new connection is opened to send a request: its head is due now
                self.reader.expect("request head", limits.head_seconds)
            self.requests += 1
            try:
                head = read_head(self.rfile)
            except TimeoutError as exc:
                if self.reader.what != "request":  # (an idle keep-alive closes quietly)
                    logger.debug("HTTP client %s: %s", self.client_address[0], exc)
                    self._refuse(408, str(exc), linger=False)
                return
            except HeadTooLarge as exc:
                self._refuse(431, str(exc))
                return
            if not head:
                return
            problem = head_problem(head)
            if problem is not None:
                logger.debug("HTTP client %s: refused: %s", self.client_address[0], problem)
                self._refuse(400, problem)
                return
            line, _, fields = head.partition(b"\n")
            self.raw_requestline = line + b"\n"
            stream, self.rfile = self.rfile, io.BytesIO(fields)
            try:
                parsed = self.parse_request()  # reads the headers from `fields`
            finally:
                self.rfile = stream
            if not parsed or not self._read_body():
                self.close_connection = True
                return
            self.connection.settimeout(idle)
            if self.command in ("GET", "HEAD"):
                self._answer(send_body=self.command == "GET")
            else:
                self._send(text(405, "only GET and HEAD"), True, ("Allow", "GET, HEAD"))
            self.wfile.flush()

        def _read_body(self) -> bool:
            """Read and throw away the request's body; False (answered, to be closed) when
            it is not taken: chunked, too large, malformed length, or late."""
            if "Transfer-Encoding" in self.headers:
                self._refuse(411, "request bodies need a Content-Length here")
                return False
            declared = self.headers.get("Content-Length", "0").strip()
            if not declared.isdigit():
                self._refuse(400, "bad Content-Length")
                return False
            length = int(declared)
            if length > MAX_BODY_BYTES:
                self._refuse(413, f"request body over {MAX_BODY_BYTES} bytes")
                return False
            if length:
                self.reader.expect("request body", limits.body_seconds)
                try:
                    received = len(self.rfile.read(length))
                except TimeoutError as exc:
                    self._refuse(408, str(exc), linger=False)
                    return False
                if received < length:
                    return False  # the client closed mid-body
            return True

        def _refuse(self, status: int, reason: str, *, linger: bool = True) -> None:
            """Answer `status` and close; with `linger`, first read (and throw away) what the
            client still sends, for up to LINGER_SECONDS and LINGER_BYTES."""
            self.close_connection = True
            self.connection.settimeout(idle)
            phrase = HTTPStatus(status).phrase
            self.wfile.write(closing_answer(status, phrase, reason))
            if not linger:
                return
            try:
                self.connection.shutdown(socket.SHUT_WR)
                self.reader.expect("lingering close", LINGER_SECONDS)
                left = LINGER_BYTES
                while left > 0 and (chunk := self.rfile.read1(64 * 1024)):
                    left -= len(chunk)
            except OSError:  # (TimeoutError included): the linger is over
                pass

        def _answer(self, send_body: bool) -> None:
            path, _, query = self.path.partition("?")
            route = routes.get(path)
            if route is not None:
                reply = route()
            else:
                reply = self._prefixed(path, query)
            self._send(reply, send_body)

        def _send(self, reply: Reply, send_body: bool, *headers: tuple[str, str]) -> None:
            body = b"".join(reply.body)
            encoding = None
            accepted = self.headers.get("Accept-Encoding", "")
            if len(body) >= GZIP_MIN_BYTES and "gzip" in accepted.lower():
                body = gzip.compress(body, compresslevel=1)
                encoding = "gzip"
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(body)))
            if encoding:
                self.send_header("Content-Encoding", encoding)
            for name, value in (*reply.headers, *headers):
                self.send_header(name, value)
            self.send_header("Vary", "Accept-Encoding")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _prefixed(self, path: str, query: str) -> Reply:
            for prefix, prefix_route in ordered:
                if path.startswith(prefix):
                    try:
                        fields = parse_qs(query, max_num_fields=20)
                    except ValueError:
                        return text(400, "too many query parameters")
                    request = Request(
                        unquote(path),
                        {k: v[0] for k, v in fields.items()},
                        {k.lower(): v for k, v in self.headers.items()},
                    )
                    return prefix_route(request)
            return text(404, f"not found; try {', '.join(sorted([*routes, *prefixes]))}")

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

    return Handler


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
        handler = _handler(routes, timeout, prefixes or {}, limits)
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


def listen_error(exc: OSError, host: str, port: int, what: str, setting: str) -> OperatorError:
    """The one line for a failure to listen on host:port."""
    if exc.errno == errno.EADDRINUSE:
        return OperatorError(
            ExitCode.PORT_IN_USE,
            f"port {port} on {host} (for the {what}) is already in use; stop what holds it or "
            f"choose another port ({setting})",
        )
    if exc.errno == errno.EACCES:
        return OperatorError(
            ExitCode.PORT_IN_USE,
            f"not allowed to listen on port {port} for the {what} (ports below 1024 need "
            f"privileges; {setting})",
        )
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return OperatorError(
            ExitCode.USAGE,
            f"cannot listen on host {host!r} for the {what}: {exc.strerror or exc}",
        )
    return OperatorError(
        ExitCode.PORT_IN_USE, f"cannot listen on {host}:{port} for the {what}: {exc}"
    )


def listening_socket(host: str, port: int, *, what: str, setting: str) -> socket.socket:
    """A bound, listening TCP socket (for uvicorn's `sockets=`), or one OperatorError line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise listen_error(exc, host, port, what, setting) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise listen_error(exc, host, port, what, setting) from None
    sock.setblocking(False)
    return sock
