"""Strict request heads: what both HTTP servers refuse with 400 before their parsers run."""

from __future__ import annotations

import pytest

from okrflow.ops.framing import head_end, head_problem

GOOD = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"


def test_a_well_formed_head_passes() -> None:
    assert head_problem(GOOD) is None
    assert head_problem(b"GET / HTTP/1.0\r\n\r\n") is None
    assert head_problem(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n\r\n") is None


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         "both Content-Length and Transfer-Encoding"),
        (b"POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
         "both Content-Length and Transfer-Encoding"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", "obs-fold"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", "obs-fold"),
        (b"GET / HTTP/1.1\nHost: x\n\n", "bare LF"),
        (b"GET / HTTP/1.1\r\nHost: x\n\r\n", "bare LF"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\n", "bare LF"),
        (b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", "bare CR"),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP version"),
        (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", "HTTP version"),
        (b"GET / http/1.1\r\nHost: x\r\n\r\n", "HTTP version"),
        (b"GET /\r\n\r\n", "request line"),
        (b"GET  / HTTP/1.1\r\n\r\n", "request line"),
        (b"\r\nGET / HTTP/1.1\r\n\r\n", "empty request line"),
        (b"GET / HTTP/1.1\r\nHost x\r\n\r\n", "field name"),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "field name"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n\r\n",
         "more than one Authorization header"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "more than one Host header"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
         "more than one Content-Length header"),
    ],
)  # fmt: skip
def test_ambiguous_heads_are_refused(head: bytes, reason: str) -> None:
    assert head_end(head) == len(head)
    problem = head_problem(head)
    assert problem is not None and reason in problem
    problem.encode("ascii")  # it goes into the 400's body as is


def test_head_end_finds_the_blank_line_as_h11_does() -> None:
    body_and_next = GOOD + b"{}GET / HTTP/1.1\r\n\r\n"
    assert head_end(body_and_next) == len(GOOD)
    assert head_end(GOOD[:-1]) == -1
    # Searching from where the last search stopped still finds a blank line split across pieces.
    assert head_end(GOOD, len(GOOD) - 1) == len(GOOD)
    assert head_end(b"GET / HTTP/1.1\n\n") == len(b"GET / HTTP/1.1\n\n")
