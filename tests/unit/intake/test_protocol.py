"""The intake's h11 strictness layer, fed bytes directly (no sockets)."""

from __future__ import annotations

import h11
import pytest

from okrflow.intake.protocol import HEAD_MAX_BYTES, HttpLimits, StrictConnection
from okrflow.intake.server import intake_limits
from okrflow.settings import Settings

GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def _events(conn: StrictConnection, data: bytes) -> list[object]:
    conn.receive_data(data)
    events: list[object] = []
    while (event := conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
        events.append(event)
    return events


def test_a_head_trickled_a_byte_at_a_time_is_judged_once_whole() -> None:
    conn = StrictConnection(HEAD_MAX_BYTES)
    seen: list[object] = []
    for byte in GET:
        seen += _events(conn, bytes([byte]))
    assert [type(e) for e in seen] == [h11.Request, h11.EndOfMessage]


def test_a_smuggled_second_request_is_refused_after_the_first_cycle() -> None:
    conn = StrictConnection(HEAD_MAX_BYTES)
    events = _events(conn, GET + b"GET / HTTP/1.1\nHost: x\n\n")
    assert [type(e) for e in events] == [h11.Request, h11.EndOfMessage]
    conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
    conn.send(h11.EndOfMessage())
    conn.start_next_cycle()
    with pytest.raises(h11.RemoteProtocolError):
        conn.next_event()
    assert conn.problem is not None and "bare LF" in conn.problem


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
    ],
)
def test_what_h11_would_accept_is_refused(head: bytes) -> None:
    plain = h11.Connection(h11.SERVER)
    plain.receive_data(head)
    assert isinstance(plain.next_event(), h11.Request)  # h11 alone takes it
    conn = StrictConnection(HEAD_MAX_BYTES)
    conn.receive_data(head)
    with pytest.raises(h11.RemoteProtocolError):
        conn.next_event()


def test_the_limits_defaults_are_the_settings_defaults() -> None:
    assert intake_limits(Settings(_env_file=None)) == HttpLimits()
