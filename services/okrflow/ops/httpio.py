"""Reading a request on a blocking socket against whole deadlines (the ops server's requests).

A socket timeout bounds one read: a client that trickles a byte just inside it holds the
connection for ever. `DeadlineReader` bounds the whole wait instead: each read may wait only
for what is left until the deadline of what it reads (a request's head, its body).
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable

# The longest request head read (request line and headers); longer gets 431.
MAX_HEAD_BYTES = 64 * 1024


class HeadTooLarge(Exception):
    pass


class DeadlineReader(io.RawIOBase):
    """The reading side of `sock`, for a BufferedReader: reads raise TimeoutError (naming what
    was awaited) once the deadline set by `idle` or `expect` has passed."""

    def __init__(self, sock: socket.socket, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._sock = sock
        self._clock = clock
        self.what = "request head"
        self.started = False  # whether a byte of `what` has arrived
        self._deadline = clock()
        self._seconds = 0.0
        self._then: float | None = None  # the head's seconds, counted from its first byte

    def idle(self, seconds: float, head_seconds: float) -> None:
        """Wait up to `seconds` for a request's first byte; its head then has `head_seconds`
        from that byte."""
        self.expect("request", seconds)
        self._then = head_seconds

    def expect(self, what: str, seconds: float) -> None:
        """What is read next must arrive within `seconds` from now."""
        self.what, self.started, self._then = what, False, None
        self._seconds = seconds
        self._deadline = self._clock() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        left = self._deadline - self._clock()
        if left <= 0:
            raise TimeoutError(f"{self.what} not received within {self._seconds:g} s")
        self._sock.settimeout(left)
        try:
            count = self._sock.recv_into(buffer)
        except TimeoutError:
            raise TimeoutError(f"{self.what} not received within {self._seconds:g} s") from None
        if count and self._then is not None:
            self.expect("request head", self._then)
        if count:
            self.started = True
        return count


def read_head(rfile: io.BufferedIOBase) -> bytes:
    """The raw head at the start of `rfile`, through its blank line (b"" at end of stream
    before a whole head). The blank line is a line feed, an optional CR and a line feed, as
    h11 reads it, so okrflow.ops.framing judges both servers' heads alike.

    Raises HeadTooLarge past MAX_HEAD_BYTES and what the reads raise (TimeoutError, OSError)."""
    lines: list[bytes] = []
    size = 0
    while True:
        line = rfile.readline(MAX_HEAD_BYTES - size + 1)
        if not line.endswith(b"\n"):
            if size + len(line) > MAX_HEAD_BYTES:
                raise HeadTooLarge(f"request head over {MAX_HEAD_BYTES} bytes")
            return b""  # the client closed mid-head (or before one)
        size += len(line)
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)
