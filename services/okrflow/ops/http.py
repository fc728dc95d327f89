"""The small HTTP server of the worker and the exporter: /metrics, /healthz, /readyz, and the
exporter's pages (prefix routes that see the request: path, query and headers).

Standard library `ThreadingHTTPServer`, spoken as HTTP/1.1 (keep-alive, Content-Length on every
answer), with a socket timeout so an idle or stalled client cannot hold a thread, and gzip when
the client asks for it (Prometheus does). The intake, which serves real traffic, runs on
uvicorn instead; these two serve a scraper and a kubelet, which this covers without adding an
ASGI server to the worker's event loop.
"""

from __future__ import annotations

import errno
import gzip
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

from okrflow.exitcodes import ExitCode, OperatorError

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many scrapers and probes at once must not be refused by a short listen backlog.
    request_queue_size = 128


def _handler(
    routes: Mapping[str, Route], idle: float, prefixes: Mapping[str, PrefixRoute]
) -> type[BaseHTTPRequestHandler]:
    # Longest prefix first: "/shops/" wins over "/".
    ordered = sorted(prefixes.items(), key=lambda item: -len(item[0]))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = idle  # seconds a connection may sit idle or stall (socket timeout)

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, send_body: bool) -> None:
            path, _, query = self.path.partition("?")
            route = routes.get(path)
            if route is not None:
                reply = route()
            else:
                reply = self._prefixed(path, query)
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
            for name, value in reply.headers:
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
    ) -> None:  # fmt: skip
        """`prefixes`: routes for every path starting with a prefix (longest first), tried
        when no exact route matches; they get the `Request`."""
        handler = _handler(routes, timeout, prefixes or {})
        self._server = bind_http(host, port, handler, what=what, setting=setting)
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
    host: str, port: int, handler: type[BaseHTTPRequestHandler], *, what: str, setting: str
) -> ThreadingHTTPServer:
    """The server bound to host:port, or OperatorError with one line naming the setting."""
    try:
        return _Server((host, port), handler)
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
