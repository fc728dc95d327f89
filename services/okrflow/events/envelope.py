"""Decode one Kafka message into a `CloudEvent`, or say exactly why it is not one.

Structured mode (the whole event is the JSON value) is the contract of DESIGN §3.
Decoding is msgspec: one pass that parses and checks types, patterns and required fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

SHOP_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class CloudEvent(msgspec.Struct, frozen=True):
    """A valid CloudEvent as okrflow reads it (unknown extension attributes are ignored)."""

    specversion: Literal["1.0"]
    id: NonEmpty
    source: Annotated[str, msgspec.Meta(min_length=1)]
    type: NonEmpty
    time: datetime
    shop: Annotated[str, msgspec.Meta(pattern=SHOP_PATTERN)]
    data: dict[str, Any]


class InvalidEvent(msgspec.Struct, frozen=True):
    """Why a message is not a valid event: `reason` is a short stable code for metrics and
    dead-letter headers, `error` the human detail."""

    reason: str
    error: str


_decoder = msgspec.json.Decoder(CloudEvent)


def decode_event(value: bytes | None, max_bytes: int = 256 * 1024) -> CloudEvent | InvalidEvent:
    """Decode a structured-mode CloudEvent; never raises for bad input."""
    if value is None:
        return InvalidEvent("empty", "message has no value")
    if len(value) > max_bytes:
        return InvalidEvent("too_large", f"message is {len(value)} bytes, limit {max_bytes}")
    try:
        event = _decoder.decode(value)
    except msgspec.ValidationError as exc:
        return InvalidEvent("invalid_envelope", str(exc))
    except msgspec.DecodeError as exc:
        return InvalidEvent("not_json", str(exc))
    if event.time.tzinfo is None:
        return InvalidEvent(
            "invalid_envelope", "time must be RFC 3339 with an offset - at `$.time`"
        )
    return event
