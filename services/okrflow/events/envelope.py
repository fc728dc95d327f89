"""Decode one Kafka message into a `CloudEvent`, or say exactly why it is not one.

Structured mode (the whole event is the JSON value) and binary mode (`ce_*` headers, the data
as the JSON value) are both accepted. Decoding is msgspec: one pass that parses and checks
types, patterns and required fields; built-in types then have their data checked.
Reason codes (stable, for metrics and dead-letter headers): empty, too_large, not_json,
not_cloudevent, bad_shop, invalid_data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from okrflow.events.types import check_data

SHOP_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Headers = Sequence[tuple[str, bytes | None]]


class CloudEvent(msgspec.Struct, frozen=True):
    """A valid CloudEvent as okrflow reads it (unknown extension attributes are ignored)."""

    specversion: Literal["1.0"]
    id: NonEmpty
    source: Annotated[str, msgspec.Meta(min_length=1)]
    type: NonEmpty
    time: datetime
    shop: Annotated[str, msgspec.Meta(pattern=SHOP_PATTERN)]
    data: dict[str, Any]
    subject: str | msgspec.UnsetType = msgspec.UNSET


class InvalidEvent(msgspec.Struct, frozen=True):
    """Why a message is not a valid event: `reason` is a short stable code for metrics and
    dead-letter headers, `error` the human detail."""

    reason: str
    error: str


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
    return _check(event)


def _envelope_error(error: str) -> InvalidEvent:
    bad_shop = error.endswith("`$.shop`") or error == "Object missing required field `shop`"
    return InvalidEvent("bad_shop" if bad_shop else "not_cloudevent", error)


def _check(event: CloudEvent) -> CloudEvent | InvalidEvent:
    if event.time.tzinfo is None:
        return InvalidEvent("not_cloudevent", "time must be RFC 3339 with an offset - at `$.time`")
    problem = check_data(event.type, event.data)
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
        return InvalidEvent("not_cloudevent", f"binary-mode data must be a JSON object: {exc}")
    except msgspec.DecodeError as exc:
        return InvalidEvent("not_json", str(exc))
    try:
        event = msgspec.convert(attributes, CloudEvent, strict=False)
    except msgspec.ValidationError as exc:
        return _envelope_error(str(exc))
    return _check(event)
