"""uvicorn's h11 protocol with the intake's HTTP limits (docs/operations.md, "HTTP limits").

uvicorn times out only a keep-alive connection between requests. `guarded_protocol` adds:

- a head deadline: a request's head (request line and headers) must arrive within
  `head_seconds` of its first byte, or of the connection's opening;
- a body deadline: its body must arrive within `body_seconds` of the end of its head (a
  Content-Length larger than what is sent, or a chunk size of 2^64, ends there);
- a connection cap: past `max_connections` open connections, a new one gets 503 and is closed;
- strict heads (okrflow.ops.framing): 400 and close for what h11 would let through;
- a lingering close: when uvicorn closes a connection whose client is still sending (a 413
  before the body was read, a 400), the answer is flushed, the sending side shut, and what the
  client still sends is read and thrown away, up to `linger_bytes` or `linger_seconds`, so a
  client that writes its whole body before it reads (urllib) reads the answer instead of a
  reset.

A deadline answers 408 when no answer was started, then closes the connection at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from okrflow.ops.framing import closing_answer, head_end, head_problem

logger = logging.getLogger(__name__)

# A connection refused at the cap is logged at most once per this many seconds.
CAP_LOG_SECONDS = 10.0
# h11's own bound on a head still arriving (431 past it), unless uvicorn's config sets one.
HEAD_MAX_BYTES = 16 * 1024


@dataclass(frozen=True)
class HttpLimits:
    """The intake's limits; the defaults are the settings' (okrflow.intake.server.intake_limits)."""

    head_seconds: float = 10.0
    body_seconds: float = 30.0
    max_connections: int = 1000
    linger_seconds: float = 5.0
    linger_bytes: int = 16 * 1024 * 1024


class StrictConnection(h11.Connection):
    """h11's server connection that judges each request head with okrflow.ops.framing before
    h11 parses it. A refused head raises RemoteProtocolError (uvicorn answers 400 and closes);
    `problem` says why.

    The head is mirrored as it arrives (one copy of h11's buffer when a request starts, then
    only the new bytes), so a head trickled a byte at a time costs linear time."""

    def __init__(self, max_incomplete_event_size: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)
        self.problem: str | None = None
        self._head: bytearray | None = None  # None: not mirrored yet for this request
        self._searched = 0
        self._judged = False

    def receive_data(self, data: bytes) -> None:
        super().receive_data(data)
        if self._head is not None and self.their_state is h11.IDLE:
            self._head += data

    def start_next_cycle(self) -> None:
        super().start_next_cycle()
        self._head, self._searched, self._judged = None, 0, False

    def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        if self.their_state is h11.IDLE and not self._judged:
            self._judge()
        return super().next_event()

    def _judge(self) -> None:
        if self._head is None:
            self._head = bytearray(self.trailing_data[0])
        end = head_end(self._head, self._searched)
        if end < 0:
            self._searched = len(self._head)
            return
        self._judged = True
        problem = head_problem(bytes(self._head[:end]))
        self._head = bytearray()
        if problem is not None:
            self.problem = problem
            raise h11.RemoteProtocolError(problem, error_status_hint=400)


class LingeringTransport(asyncio.Transport):
    """The transport uvicorn holds: everything goes to the real one, but `close` asks the
    protocol first, which may linger instead (`GuardedProtocol.close_requested`)."""

    def __init__(self, inner: asyncio.Transport, protocol: GuardedProtocol) -> None:
        super().__init__()
        self.inner = inner
        self._protocol = protocol

    def close(self) -> None:
        if not self.is_closing():
            self._protocol.close_requested()

    def is_closing(self) -> bool:
        return self._protocol.lingering or self.inner.is_closing()

    # Any: asyncio.Transport.write's own signature (a memoryview of any format or shape)
    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        if not self._protocol.lingering:
            self.inner.write(data)

    # Any: asyncio.BaseTransport.get_extra_info's own signature (what it holds varies by name)
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self.inner.resume_reading()

    def is_reading(self) -> bool:
        return self.inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.inner.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self.inner.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.inner.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self.inner.can_write_eof()

    def write_eof(self) -> None:
        self.inner.write_eof()

    def abort(self) -> None:
        self.inner.abort()


class GuardedProtocol(H11Protocol):
    """H11Protocol with `limits` (set by `guarded_protocol`)."""

    limits: ClassVar[HttpLimits] = HttpLimits()
    _cap_logged = 0.0  # when a refusal at the cap was last logged (shared by all connections)

    def __init__(
        self, config: Config, server_state: ServerState,
        app_state: dict[str, Any],  # Any: uvicorn's H11Protocol signature (the lifespan state)
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:  # fmt: skip
        super().__init__(config, server_state, app_state, _loop)
        self.conn = StrictConnection(config.h11_max_incomplete_event_size or HEAD_MAX_BYTES)
        self.lingering = False
        self._refused = False
        self._phase: str | None = None  # "head" or "body": what the deadline waits for
        self._deadline: asyncio.TimerHandle | None = None
        self._linger_left = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(LingeringTransport(transport, self))
        if len(self.connections) > self.limits.max_connections:
            now = time.monotonic()
            if now - GuardedProtocol._cap_logged >= CAP_LOG_SECONDS:
                GuardedProtocol._cap_logged = now
                logger.warning(
                    "intake: %d connections open, refusing more with 503 "
                    "(OKRFLOW_INTAKE_MAX_CONNECTIONS=%d)",
                    len(self.connections) - 1, self.limits.max_connections,
                )  # fmt: skip
            self._close_now(
                closing_answer(503, "Service Unavailable", "too many connections", "retry-after: 1")
            )
            return
        self._rearm()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            self._linger_left -= len(data)
            if self._linger_left < 0:
                self._inner.close()
            return
        super().data_received(data)
        self._rearm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._rearm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_deadline(None)
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._refused = True
        problem = self.conn.problem if isinstance(self.conn, StrictConnection) else None
        if problem is not None:
            logger.debug("intake: refused a request from %s: %s", self.client, problem)
        super().send_400_response(problem or msg)

    def close_requested(self) -> None:
        """uvicorn closes the connection: at once, unless its client may still be sending."""
        client = self.conn.their_state
        if not (self._refused or client is h11.SEND_BODY or client is h11.ERROR):
            self._inner.close()
            return
        self.lingering = True
        self._set_deadline(None)
        self._unset_keepalive_if_required()
        self._linger_left = self.limits.linger_bytes
        if self._inner.can_write_eof():
            self._inner.write_eof()  # after what is buffered: the client reads the answer
        self._inner.resume_reading()  # (uvicorn may have paused it); the client's EOF ends it
        self._deadline = self.loop.call_later(self.limits.linger_seconds, self._inner.close)

    @property
    def _inner(self) -> asyncio.Transport:
        transport = self.transport
        return transport.inner if isinstance(transport, LingeringTransport) else transport

    def _rearm(self) -> None:
        """Point the deadline at what the connection waits for now."""
        if self.lingering:
            return  # the linger's own timer runs
        state = self.conn.their_state
        if self._inner.is_closing():
            phase = None
        elif state is h11.IDLE and self.timeout_keep_alive_task is None:
            phase = "head"  # (while uvicorn's keep-alive timer runs, the connection is idle)
        elif state is h11.SEND_BODY:
            phase = "body"
        else:
            phase = None
        if phase != self._phase:
            self._set_deadline(phase)

    def _set_deadline(self, phase: str | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase is not None:
            seconds = self.limits.head_seconds if phase == "head" else self.limits.body_seconds
            self._deadline = self.loop.call_later(seconds, self._late, phase, seconds)

    def _late(self, phase: str, seconds: float) -> None:
        self._deadline = None
        if self._inner.is_closing():
            return
        logger.debug("intake: %s of %s not received within %g s", phase, self.client, seconds)
        started = self.cycle is not None and self.cycle.response_started and phase == "body"
        what = f"request {phase} not received within {seconds:g} s"
        self._close_now(b"" if started else closing_answer(408, "Request Timeout", what))

    def _close_now(self, answer: bytes) -> None:
        self._set_deadline(None)
        if answer:
            self._inner.write(answer)
        self._inner.close()


def guarded_protocol(limits: HttpLimits) -> type[GuardedProtocol]:
    """The protocol class to pass as uvicorn's `http=`, with these limits."""

    class IntakeProtocol(GuardedProtocol):
        pass

    IntakeProtocol.limits = limits
    return IntakeProtocol
