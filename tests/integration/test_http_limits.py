"""HTTP limits (docs/operations.md, "HTTP limits") over raw sockets to 127.0.0.1.

The intake runs in process: uvicorn configured as `okrflow intake` configures it
(okrflow.intake.server.uvicorn_config) with the real routes over a recording sink, so no broker
is needed. The exporter runs as a real process. Each: 200 slowloris sockets are closed by the
deadlines while other requests are served; the smuggling shapes get 400 and a closed
connection; an 8 MB body sent by urllib (which writes it all before reading) gets a readable
413; and for the exporter, clients that hang up are one JSON log line each, no traceback.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import selectors
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from okrflow.intake.app import IntakeParts, build_app
from okrflow.intake.metrics import IntakeMetrics
from okrflow.intake.openapi import openapi_document
from okrflow.intake.ratelimit import RateLimiter
from okrflow.intake.server import uvicorn_config
from okrflow.ops.listen import listening_socket
from okrflow.settings import Settings
from tests.integration.processes import okrflow, okrflow_env, running
from tests.services import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
STATUS_LINE = re.compile(rb"HTTP/1\.1 \d{3} ")
TOKEN = "good"
EVENTS_HEAD = (
    "POST /v1/events HTTP/1.1\r\nHost: intake\r\nAuthorization: Bearer good\r\n"
    "Content-Type: application/cloudevents+json\r\n"
)
SMUGGLING = {
    "content-length and transfer-encoding": (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "transfer-encoding and content-length": (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 44\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "obs-fold": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    "bare LF": b"GET /healthz HTTP/1.1\nHost: x\n\nGET /healthz HTTP/1.1\nHost: x\n\n",
    "HTTP/2.0 request line": b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
    "two Authorization headers": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n"
        b"Authorization: Bearer other\r\n\r\n"
    ),
}


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send_all(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        self.sent.extend(messages)

    async def reachable(self, timeout: float) -> bool:
        return True


def _parts(settings: Settings) -> IntakeParts:
    registry = CollectorRegistry()
    return IntakeParts(
        sink=RecordingSink(), authenticate={TOKEN: "shop-a"}.get,
        webhook_secret=lambda shop, platform: None, progress=lambda shop: {},
        metrics=IntakeMetrics(registry), registry=registry, limiter=RateLimiter(0, 1),
        openapi=openapi_document(settings),
        max_request_bytes=settings.intake_max_request_bytes,
        max_event_bytes=settings.max_event_bytes,
        max_batch_events=settings.intake_max_batch_events,
    )  # fmt: skip


@contextmanager
def serving_intake(**overrides: Any) -> Iterator[int]:
    """The intake's HTTP server in a thread (port 0); yields its port."""
    settings = Settings(intake_host="127.0.0.1", intake_port=0, **overrides)
    sock = listening_socket("127.0.0.1", 0, what="intake", setting="test")
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn_config(build_app(_parts(settings)), settings))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        wait_for(lambda: server.started, bool, 30, "the intake's server to start")
        yield port
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive()


def _answer(port: int, data: bytes, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Send `data` on a new connection; what came back, and whether the server closed it
    (False: still open after `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return received, False
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
        return received, False


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@dataclass
class Loris:
    """One slow client: `opening` at once, then `trickle` a byte at a time."""

    kind: str
    sock: socket.socket
    trickle: bytes
    received: bytes = b""
    closed_after: float | None = None
    sent: int = 0
    opened: float = field(default_factory=time.monotonic)


LORIS_KINDS: dict[str, tuple[bytes, bytes]] = {
    "silent": (b"", b""),
    "head": (b"POST /v1/ev", b"e"),
    "header value": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"a"),
    "body": ((EVENTS_HEAD + "Content-Length: 300\r\n\r\n{").encode(), b" "),
    "chunk of 2^64": (
        (EVENTS_HEAD + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n").encode(),
        b"x",
    ),
}


def slowloris(
    port: int, kinds: Sequence[str], count: int, probe: Callable[[], int], limit: float
) -> tuple[list[Loris], list[tuple[int, int]]]:
    """Open `count` slow clients (kinds in turn), trickle a byte to each every 0.2 s until the
    server closes it, and call `probe` (a normal request) every round meanwhile. Returns the
    clients and, for each probe, (its status, how many slow clients were open). At most
    `limit` seconds."""
    lorises: list[Loris] = []
    selector = selectors.DefaultSelector()
    for i in range(count):
        kind = kinds[i % len(kinds)]
        opening, trickle = LORIS_KINDS[kind]
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if opening:
            sock.sendall(opening)
        sock.setblocking(False)
        loris = Loris(kind, sock, trickle)
        lorises.append(loris)
        selector.register(sock, selectors.EVENT_READ, loris)
    probes: list[tuple[int, int]] = []
    start = time.monotonic()
    try:
        while any(x.closed_after is None for x in lorises):
            assert time.monotonic() - start < limit, [
                (x.kind, x.sent) for x in lorises if x.closed_after is None
            ][:10]
            for loris in lorises:
                if loris.closed_after is None and loris.trickle:
                    with suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                        loris.sent += loris.sock.send(loris.trickle)
            for key, _ in selector.select(timeout=0.2):
                loris = key.data
                try:
                    chunk = loris.sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                loris.received += chunk
                if not chunk:
                    loris.closed_after = time.monotonic() - loris.opened
                    selector.unregister(loris.sock)
            still_open = sum(x.closed_after is None for x in lorises)
            if still_open:
                probes.append((probe(), still_open))
    finally:
        selector.close()
        for loris in lorises:
            loris.sock.close()
    return lorises, probes


def _assert_closed_by_deadlines(
    lorises: list[Loris], probes: list[tuple[int, int]], deadline: float, count: int
) -> None:
    for loris in lorises:
        assert loris.received.startswith(b"HTTP/1.1 408 "), (loris.kind, loris.received[:200])
        assert loris.closed_after is not None
        # Closed by the deadline: not before it, and not long after (a busy 2-core machine).
        assert deadline * 0.9 <= loris.closed_after <= deadline + 4, loris
        if loris.kind != "silent":
            assert loris.sent >= 1, loris  # it did trickle bytes, and they did not extend it
    assert probes and all(status == 200 for status, _ in probes), probes
    assert probes[0][1] == count  # served while every slow client was open


def test_intake_closes_slowloris_by_the_deadlines_while_it_serves_others() -> None:
    with serving_intake(intake_header_timeout_seconds=1.5, intake_body_timeout_seconds=1.5) as port:
        lorises, probes = slowloris(
            port, list(LORIS_KINDS), 200, lambda: _get(port, "/healthz"), limit=20
        )
        _assert_closed_by_deadlines(lorises, probes, 1.5, 200)
        assert _get(port, "/healthz") == 200


@pytest.mark.parametrize("shape", SMUGGLING)
def test_intake_refuses_smuggling_shapes_with_400_and_closes(shape: str) -> None:
    with serving_intake() as port:
        received, closed = _answer(port, SMUGGLING[shape])
    assert received.startswith(b"HTTP/1.1 400 "), received
    assert len(STATUS_LINE.findall(received)) == 1, received  # nothing behind it answered
    assert closed


def test_intake_still_serves_pipelined_requests() -> None:
    two = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2
    with serving_intake() as port, socket.create_connection(("127.0.0.1", port), 10) as sock:
        sock.sendall(two)
        received = b""
        while received.count(b"HTTP/1.1 200 ") < 2 and (chunk := sock.recv(65536)):
            received += chunk
    assert received.count(b"HTTP/1.1 200 ") == 2


def _post_8_mb(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=b"x" * (8 * 1024 * 1024), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_intake_8_mb_body_sent_by_urllib_reads_its_413() -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/cloudevents+json"}
    with serving_intake() as port:
        for _ in range(3):  # each time, not by luck of timing
            status, body = _post_8_mb(f"http://127.0.0.1:{port}/v1/events", headers)
            assert status == 413, body
            assert json.loads(body) == {"error": "request body over 1048576 bytes"}


def test_intake_connection_cap_answers_503() -> None:
    with serving_intake(intake_max_connections=10) as port:
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(10)]
        try:
            received = wait_for(
                lambda: _answer(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5)[0],
                lambda answer: answer.startswith(b"HTTP/1.1 503 "), 10, "a 503 at the cap",
            )  # fmt: skip
            assert b"retry-after: 1" in received
        finally:
            for sock in held:
                sock.close()
        wait_for(lambda: _get(port, "/healthz"), lambda s: s == 200, 10, "served again")


def _hang_up(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        # Reset, not close: the server's reads or writes fail as with a client that died.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_exporter_http_limits(tmp_path: Path) -> None:
    port = free_port()
    env = okrflow_env(
        database_url=f"sqlite:///{tmp_path / 'okrflow.db'}", exporter_port=port,
        ops_http_header_timeout_seconds=1.5, ops_http_body_timeout_seconds=1.5,
        log_format="json",
    )  # fmt: skip
    applied = okrflow(env, "apply", str(REPO / "schemas/examples/okrs/salon.yaml"), "--yes")
    assert applied.returncode == 0, applied.stderr
    log = tmp_path / "exporter.log"
    with running(env, "exporter", log=log) as exporter:

        def ready() -> int:
            try:
                return _get(port, "/readyz")
            except OSError:
                return 0

        wait_for(ready, lambda status: status == 200, 60, "/readyz 200")
        kinds = ["silent", "head", "header value", "body"]
        lorises, probes = slowloris(port, kinds, 200, lambda: _get(port, "/metrics"), limit=20)
        _assert_closed_by_deadlines(lorises, probes, 1.5, 200)

        for shape, data in SMUGGLING.items():
            received, closed = _answer(port, data)
            assert received.startswith(b"HTTP/1.1 400 "), (shape, received)
            assert len(STATUS_LINE.findall(received)) == 1 and closed, (shape, received)

        status, body = _post_8_mb(f"http://127.0.0.1:{port}/metrics", {})
        assert (status, body) == (413, b"request body over 65536 bytes\n")

        for _ in range(150):
            _hang_up(port)
        assert _get(port, "/healthz") == 200
        assert exporter.poll() is None
    lines = log.read_text().splitlines()
    assert "Traceback" not in log.read_text()
    records = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    hung_up = [r for r in records if "hung up" in r["message"]]
    assert 0 < len(hung_up) <= 150  # one line each (or none for one answered in time)
