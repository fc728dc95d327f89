"""Decode one Kafka message into a `CloudEvent`, or say exactly why it is not one.

Structured mode (the whole event is the JSON value) and binary mode (`ce_*` headers, the data
as the JSON value) are both accepted. Decoding is msgspec: one pass that parses and checks
types, patterns and required fields; built-in types then have their data checked.
Reason codes (stable, for metrics and dead-letter headers; docs/events.md explains each):
empty, too_large, too_deep, not_json, not_cloudevent, bad_shop, bad_time, bad_number,
invalid_data. (`database_rejected` is given later in the pipeline, see okrflow.ingest.)
Every one of them depends on the message alone: the intake refuses with them what the worker
would dead-letter.

Limits that keep one message from hurting the rest (docs/events.md): `id` and `type` at most
255 characters, `source` and `subject` at most 2,048; no control characters in them
(CloudEvents strings exclude U+0000-U+001F and U+007F-U+009F); JSON nesting within Python's
recursion limit; `time` from 1970-01-01 to 2999-12-31 (UTC), so every later step can convert it;
every number in `data` within +/-2^53, so every key result counts it exactly
(okrflow.events.numbers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from okrflow.events.numbers import has_inexact_number, inexact_number_error, out_of_range_error
from okrflow.events.types import check_data

SHOP_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
Headers = Sequence[tuple[str, bytes | None]]


class CloudEvent(msgspec.Struct, frozen=True):
    """A valid CloudEvent as okrflow reads it (unknown extension attributes are ignored)."""

    specversion: Literal["1.0"]
    id: NonEmpty
    source: LongText
    type: NonEmpty
    time: datetime
    # SHOP_PATTERN is checked after decoding, against a cache of shops already seen valid:
    # msgspec's regex per event cost ~1 µs, a set lookup ~0.05 µs.
    shop: Annotated[str, msgspec.Meta(max_length=63)]
    # Any: decoded without a schema (any type's data); typed as JSON, msgspec would check
    # every value of every event on the hot path (the built-in types: events.types)
    data: dict[str, Any]
    subject: Annotated[str, msgspec.Meta(max_length=2048)] | msgspec.UnsetType = msgspec.UNSET


class InvalidEvent(msgspec.Struct, frozen=True):
    """Why a message is not a valid event: `reason` is a short stable code for metrics and
    dead-letter headers, `error` the human detail."""

    reason: str
    error: str


# Event times okrflow can convert to any zone and to a unix time (year 1 or 9999 with an
# offset overflows datetime arithmetic).
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(3000, 1, 1, tzinfo=UTC)
# Control characters that CloudEvents strings must not contain (and PostgreSQL text cannot
# hold U+0000).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

_SHOP = re.compile(SHOP_PATTERN.removeprefix("^").removesuffix("$"))
_SHOP_ERROR = f"Expected `str` matching regex {SHOP_PATTERN!r} - at `$.shop`"
_valid_shops: set[str] = set()
_MAX_CACHED_SHOPS = 100_000  # a bound on the cache; beyond it, the regex decides

_decoder = msgspec.json.Decoder(CloudEvent)
_data_decoder = msgspec.json.Decoder(dict[str, Any])


def decode_event(
    value: bytes | None, max_bytes: int = 256 * 1024, headers: Headers | None = None
) -> CloudEvent | InvalidEvent:
    """Decode a CloudEvent (structured, or binary when `ce_specversion` is a header).

    Never raises for bad input.
    """
    if value is None:
        return InvalidEvent("empty", "message has no value")
    if len(value) > max_bytes:
        return InvalidEvent("too_large", f"message is {len(value)} bytes, limit {max_bytes}")
    if headers and any(k == "ce_specversion" for k, _ in headers):
        return _decode_binary(value, headers)
    try:
        event = _decoder.decode(value)
    except msgspec.ValidationError as exc:
        return _envelope_error(str(exc))
    except msgspec.DecodeError as exc:
        return InvalidEvent("not_json", str(exc))
    except RecursionError:
        return _too_deep()
    return _check(event)


def _too_deep() -> InvalidEvent:
    return InvalidEvent("too_deep", "JSON nested deeper than okrflow decodes (about 1,000 levels)")


def _envelope_error(error: str) -> InvalidEvent:
    if error.startswith("Number out of range - at `$.data"):  # such as 1e400
        return InvalidEvent("bad_number", out_of_range_error(error))
    bad_shop = error.endswith("`$.shop`") or error == "Object missing required field `shop`"
    return InvalidEvent("bad_shop" if bad_shop else "not_cloudevent", error)


def _in_time_range(time: datetime) -> bool:
    try:
        return EARLIEST_TIME <= time < LATEST_TIME
    except OverflowError:  # comparing converts to UTC, which overflows at the calendar's ends
        return False


def _control_characters(name: str) -> InvalidEvent:
    return InvalidEvent("not_cloudevent", f"control characters are not allowed - at `$.{name}`")


def _shop_is_valid(shop: str) -> bool:
    """SHOP_PATTERN, matched in full (a trailing newline is refused too, as JSON Schema does)."""
    if shop in _valid_shops:
        return True
    if _SHOP.fullmatch(shop) is None:
        return False
    if len(_valid_shops) < _MAX_CACHED_SHOPS:
        _valid_shops.add(shop)
    return True


def _check(event: CloudEvent) -> CloudEvent | InvalidEvent:
    if not _shop_is_valid(event.shop):
        return InvalidEvent("bad_shop", _SHOP_ERROR)
    if event.time.tzinfo is None:
        return InvalidEvent("not_cloudevent", "time must be RFC 3339 with an offset - at `$.time`")
    time = event.time
    # Hot path: a year well inside the range needs no conversion to UTC (an offset moves the
    # instant by less than a day); only the edge years are compared exactly.
    if not 1970 < time.year < 2999 and not _in_time_range(time):
        return InvalidEvent(
            "bad_time", "time must lie between 1970-01-01 and 2999-12-31 (UTC) - at `$.time`"
        )
    # isprintable() (C, fast) is False for every control character, and for a few other
    # characters (such as U+00A0) that are allowed: only then is the exact check needed.
    if not (event.id.isprintable() and event.type.isprintable() and event.source.isprintable()):
        for name, text in (("id", event.id), ("type", event.type), ("source", event.source)):
            if _CONTROL.search(text) is not None:
                return _control_characters(name)
    if type(event.subject) is str and _CONTROL.search(event.subject) is not None:
        return _control_characters("subject")
    data = event.data
    if has_inexact_number(data):
        return InvalidEvent("bad_number", inexact_number_error(data))
    try:
        problem = check_data(event.type, data)
    except RecursionError:
        return _too_deep()
    if problem is not None:
        return InvalidEvent("invalid_data", problem)
    return event


def _decode_binary(value: bytes, headers: Headers) -> CloudEvent | InvalidEvent:
    attributes: dict[str, Any] = {}
    for key, raw in headers:
        if key.startswith("ce_") and raw is not None:
            try:
                attributes[key[3:]] = raw.decode()
            except UnicodeDecodeError:
                return InvalidEvent("not_cloudevent", f"header {key} is not UTF-8")
    try:
        attributes["data"] = _data_decoder.decode(value)
    except msgspec.ValidationError as exc:
        if str(exc).startswith("Number out of range - at `$"):  # such as 1e400
            return _envelope_error(str(exc).replace("`$", "`$.data", 1))
        return InvalidEvent("not_cloudevent", f"binary-mode data must be a JSON object: {exc}")
    except msgspec.DecodeError as exc:
        return InvalidEvent("not_json", str(exc))
    except RecursionError:
        return _too_deep()
    try:
        event = msgspec.convert(attributes, CloudEvent, strict=False)
    except msgspec.ValidationError as exc:
        return _envelope_error(str(exc))
    return _check(event)
