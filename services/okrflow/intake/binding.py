"""CloudEvents HTTP binding 1.0: a request's events, checked by the worker's own decoder.

Three forms of `POST /v1/events`:
- structured: `Content-Type: application/cloudevents+json`, the body is one event;
- binary: `ce-*` headers carry the attributes, the body is the data (`application/json`);
- batched: `Content-Type: application/cloudevents-batch+json`, the body is a JSON array.

Every event is encoded as a structured CloudEvent (what the worker consumes) and decoded with
okrflow.events.decode_event, so the intake accepts exactly what the worker counts. What is
produced is always okrflow's own encoding of the JSON the client sent (msgspec's, as in the
worker), never the client's bytes: an object with a key twice (two `shop`s) keeps the last
one, as every decoder of okrflow reads it, so no reader that keeps the first can see another
shop or value than the one okrflow checked and counted. A request
is all or nothing: one bad event rejects the request, and each problem names the event's
index in the batch and a JSON pointer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import msgspec

from okrflow.events import CloudEvent, InvalidEvent, decode_event
from okrflow.events.numbers import out_of_range_error
from okrflow.jsontypes import JsonObject

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
BINARY_DATA = "application/json"

_POINTER = re.compile(r" - at `\$((?:\.[^`.\[]+|\[\d+\]|\[\.\.\.\])*)`$")
_any = msgspec.json.Decoder()


@dataclass(frozen=True)
class Problem:
    """One reason a request is refused: which event (index in the batch; 0 otherwise), where
    in it (a JSON pointer), and why (`reason` is the decoder's code)."""

    index: int
    pointer: str
    reason: str
    message: str

    def to_json(self) -> JsonObject:
        return {
            "index": self.index, "pointer": self.pointer, "reason": self.reason,
            "message": self.message,
        }  # fmt: skip


@dataclass(frozen=True)
class Accepted:
    """A valid event and the bytes to produce (a structured CloudEvent)."""

    event: CloudEvent
    value: bytes


class UnsupportedMediaType(ValueError):
    """The request's content type is none of the three forms."""


class TooManyEvents(ValueError):
    """A batch with more events than the limit."""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


_ITEM = re.compile(r"^Number out of range - at `\$\[(\d+)\]")
_MISSING = re.compile(r"^Object missing required field `([^`]+)`")


def pointer_of(error: str) -> str:
    """msgspec's "... - at `$.data.total`" -> "/data/total" (a missing field's pointer names
    the field); "" (the whole event) if the error has no location."""
    missing = _MISSING.match(error)
    match = _POINTER.search(error)
    path = match.group(1) if match is not None else ""
    if missing is not None:
        path += "." + missing.group(1)
    parts = re.findall(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]", path)
    return "".join(
        "/" + (name or index).replace("~", "~0").replace("/", "~1") for name, index in parts
    )


def _problem(index: int, invalid: InvalidEvent) -> Problem:
    return Problem(index, pointer_of(invalid.error), invalid.reason, invalid.error)


def _check_one(index: int, value: bytes, max_bytes: int) -> Accepted | Problem:
    decoded = decode_event(value, max_bytes)
    if isinstance(decoded, CloudEvent):
        return Accepted(decoded, value)
    return _problem(index, decoded)


def parse_events(
    content_type: str | None, headers: Mapping[str, str], body: bytes, *,
    max_event_bytes: int, max_batch: int,
) -> tuple[list[Accepted], list[Problem]]:  # fmt: skip
    """The request's events, or the problems that refuse it. `headers` has lower-case names.

    Raises UnsupportedMediaType (415) and TooManyEvents (413)."""
    kind = media_type(content_type)
    if "ce-specversion" in headers:
        if kind not in (BINARY_DATA, ""):
            raise UnsupportedMediaType(
                f"binary mode takes the data as {BINARY_DATA}, not {kind or 'no content type'}"
            )
        values: list[bytes | Problem] = [_binary_to_structured(headers, body)]
    elif kind == STRUCTURED:
        values = [_canonical(body, max_event_bytes)]
    elif kind == BATCH:
        split = _split_batch(body, max_batch)
        if isinstance(split, Problem):
            return [], [split]
        values = split
    else:
        raise UnsupportedMediaType(
            f"Content-Type must be {STRUCTURED}, {BATCH}, or {BINARY_DATA} with ce-* headers"
            f" (binary mode), not {kind or 'missing'}"
        )
    accepted: list[Accepted] = []
    problems: list[Problem] = []
    for index, value in enumerate(values):
        if isinstance(value, Problem):
            problems.append(value)
            continue
        checked = _check_one(index, value, max_event_bytes)
        if isinstance(checked, Problem):
            problems.append(checked)
        else:
            accepted.append(checked)
    return (accepted, []) if not problems else ([], problems)


def _canonical(body: bytes, max_bytes: int) -> bytes:
    """`body` re-encoded as okrflow encodes JSON (duplicate keys: the last one kept). A body
    over the limit, or one that is not JSON, is left as it is for decode_event to refuse with
    its own reason."""
    if len(body) > max_bytes:
        return body
    try:
        return msgspec.json.encode(_any.decode(body))
    except (msgspec.DecodeError, RecursionError):
        return body


def _split_batch(body: bytes, max_batch: int) -> list[bytes | Problem] | Problem:
    try:
        items = _any.decode(body)
    except msgspec.ValidationError as exc:  # msgspec's only one here: a number beyond a float
        where = _ITEM.match(str(exc))
        return Problem(int(where.group(1)) if where else 0, "", "bad_number",
                       out_of_range_error(str(exc)))  # fmt: skip
    except msgspec.DecodeError as exc:
        return Problem(0, "", "not_json", str(exc))
    except RecursionError:
        return Problem(0, "", "too_deep", "JSON nested deeper than okrflow decodes")
    if not isinstance(items, list):
        return Problem(0, "", "not_cloudevent", "a batch is a JSON array of CloudEvents")
    if len(items) > max_batch:
        raise TooManyEvents(f"a batch holds at most {max_batch} events, this one {len(items)}")
    if not items:
        return Problem(0, "", "not_cloudevent", "a batch holds at least one event")
    out: list[bytes | Problem] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            out.append(Problem(index, "", "not_cloudevent", "each batch item is a JSON object"))
            continue
        out.append(msgspec.json.encode(item))
    return out


def _binary_to_structured(headers: Mapping[str, str], body: bytes) -> bytes | Problem:
    """Binary mode to the structured form the worker consumes (attributes from ce-* headers,
    percent-decoded as the binding asks)."""

    event: JsonObject = {
        name[3:]: unquote(value) for name, value in headers.items() if name.startswith("ce-")
    }
    try:
        event["data"] = _any.decode(body) if body else None
    except msgspec.ValidationError as exc:  # msgspec's only one here: a number beyond a float
        message = out_of_range_error(str(exc).replace("`$", "`$.data", 1))
        return Problem(0, pointer_of(message), "bad_number", message)
    except msgspec.DecodeError as exc:
        return Problem(0, "/data", "not_json", str(exc))
    except RecursionError:
        return Problem(0, "/data", "too_deep", "JSON nested deeper than okrflow decodes")
    return msgspec.json.encode(event)
