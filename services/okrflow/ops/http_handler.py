"""The ops HTTP server's request handler (okrflow.ops.http): one connection's requests read
against their deadlines, judged strictly (okrflow.ops.framing), routed, and answered with
Content-Length (gzip when asked); refusals close, after a lingering read."""

from __future__ import annotations

import gzip
import io
import logging
import socket
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import ClassVar
from urllib.parse import parse_qs, unquote

from okrflow.ops.framing import closing_answer, head_problem
from okrflow.ops.httpio import DeadlineReader, HeadTooLarge, read_head
from okrflow.ops.routes import PrefixRoute, Reply, Request, Route, text

logger = logging.getLogger(__name__)

# Bodies smaller than this go uncompressed even when gzip is accepted: not worth the CPU.
GZIP_MIN_BYTES = 1024
# A request body is read and thrown away up to this size (the routes take none); larger: 413.
MAX_BODY_BYTES = 64 * 1024
# After a refusal that closes, what the client still sends is read for up to this long and
# this many bytes, so it reads the answer instead of a reset.
LINGER_SECONDS = 5.0
LINGER_BYTES = 16 * 1024 * 1024


class OpsRequestHandler(BaseHTTPRequestHandler):
    """Answers the requests of one connection; `handler_class` makes one per server, with
    its routes and limits as class attributes."""

    protocol_version = "HTTP/1.1"
    routes: ClassVar[Mapping[str, Route]] = {}
    prefixes: ClassVar[Sequence[tuple[str, PrefixRoute]]] = ()  # longest prefix first
    idle: ClassVar[float] = 30.0  # between two requests; also each write's socket timeout
    head_seconds: ClassVar[float] = 10.0
    body_seconds: ClassVar[float] = 10.0

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
            self.reader.idle(self.idle, self.head_seconds)
        else:  # a new connection is opened to send a request: its head is due now
            self.reader.expect("request head", self.head_seconds)
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
        self.connection.settimeout(self.idle)
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
            self.reader.expect("request body", self.body_seconds)
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
        self.connection.settimeout(self.idle)
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
        route = self.routes.get(path)
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
        for prefix, prefix_route in self.prefixes:
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
        return text(
            404,
            f"not found; try {', '.join(sorted([*self.routes, *(p for p, _ in self.prefixes)]))}",
        )

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


def handler_class(
    routes: Mapping[str, Route], idle: float, prefixes: Mapping[str, PrefixRoute],
    head_seconds: float, body_seconds: float,
) -> type[OpsRequestHandler]:  # fmt: skip
    """A handler class for one server: `routes` by exact path, `prefixes` tried longest first
    ("/shops/" wins over "/") when no exact route matches."""

    class Handler(OpsRequestHandler):
        pass

    Handler.routes = routes
    Handler.prefixes = tuple(sorted(prefixes.items(), key=lambda item: -len(item[0])))
    Handler.idle = idle
    Handler.timeout = idle  # the socket timeout of each write (reads have their deadlines)
    Handler.head_seconds, Handler.body_seconds = head_seconds, body_seconds
    return Handler
