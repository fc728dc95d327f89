"""Strict HTTP/1.1 request heads (RFC 9112), judged on the raw bytes before a parser reads them.

h11 (under uvicorn) and http.server are lenient where leniency lets two parsers disagree about
where a request ends (request smuggling, RFC 9112 §11.2): both accept bare-LF line endings,
obs-fold continuation lines and any `HTTP/x.y`; h11 lets Transfer-Encoding win over a
Content-Length beside it and keeps the connection open. Both okrflow servers answer these
heads 400 and close the connection instead, with the reason that `head_problem` returns.
"""

from __future__ import annotations

import re
from collections import Counter

# Where h11 and http.client end a head: a line feed, an optional CR, a line feed.
HEAD_END = re.compile(rb"\n\r?\n")
VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")
# RFC 9110 §5.1: a field name is a token.
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Headers a request may carry once: a second Authorization or Host makes the request mean
# whatever the reader picks (Starlette's first, a proxy's last).
SINGLE = {b"authorization": "Authorization", b"host": "Host", b"content-length": "Content-Length"}


def head_end(data: bytes | bytearray, start: int = 0) -> int:
    """The length of the complete head at the start of `data`, or -1 while it is incomplete
    (`start`: where to search from, for a head that arrives in pieces)."""
    found = HEAD_END.search(data, max(0, start - 2))
    return -1 if found is None else found.end()


def head_problem(head: bytes) -> str | None:
    """Why this complete request head (through its blank line) must be refused, or None.

    The reason is one ASCII line for the 400's body; a refused request is answered 400 and
    its connection closed (its framing cannot be trusted, so nothing after it is either)."""
    lines = head.split(b"\n")[:-1]  # each ends with its CR when the head is well formed
    for line in lines:
        if not line.endswith(b"\r"):
            return "bare LF line ending: lines end with CRLF"
        if b"\r" in line[:-1]:
            return "bare CR in the request head"
    request_line, fields = lines[0][:-1], [line[:-1] for line in lines[1:-1]]
    if not request_line:
        return "empty request line"
    parts = request_line.split(b" ")
    if len(parts) != 3 or not all(parts):
        return "request line must be METHOD SP TARGET SP HTTP-VERSION"
    if parts[2] not in VERSIONS:
        return "HTTP version must be HTTP/1.1 or HTTP/1.0"
    names: Counter[bytes] = Counter()
    for field in fields:
        if field[:1] in (b" ", b"\t"):
            return "obs-fold header line (a line starting with a space or a tab)"
        name, colon, _ = field.partition(b":")
        if not colon or not _NAME.fullmatch(name):
            return "header line without a field name and a colon"
        names[name.lower()] += 1
    if names[b"content-length"] and names[b"transfer-encoding"]:
        return "both Content-Length and Transfer-Encoding"
    for name, title in SINGLE.items():
        if names[name] > 1:
            return f"more than one {title} header"
    return None


def closing_answer(status: int, reason: str, text: str, *headers: str) -> bytes:
    """A whole HTTP/1.1 answer with `connection: close`, written raw where no parser's state
    can send one (no request read yet, or a refusal at the connection cap)."""
    body = text.encode() + b"\n"
    head = [
        f"HTTP/1.1 {status} {reason}", "content-type: text/plain; charset=utf-8",
        f"content-length: {len(body)}", "connection: close", *headers,
    ]  # fmt: skip
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body
