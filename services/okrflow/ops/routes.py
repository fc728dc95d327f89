"""What a route of the ops HTTP server (okrflow.ops.http) sees and answers: the `Request` of a
prefix route, the `Reply`, and the two kinds of body the probes and scrapes send."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


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


def json_reply(status: int, body: Mapping[str, object]) -> Reply:
    """A JSON object as the answer (the probes' bodies)."""
    return Reply(status, [json.dumps(body).encode() + b"\n"], "application/json")


Route = Callable[[], Reply]
PrefixRoute = Callable[[Request], Reply]
