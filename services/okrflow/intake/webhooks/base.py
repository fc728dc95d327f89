"""What every platform webhook shares: the result, the two errors, the platform protocol, and
the checks that turn a signed JSON body into okrflow CloudEvents.

Pure code: no HTTP framework, no database. The HTTP app finds a platform in
`okrflow.intake.webhooks.PLATFORMS`, calls `verify` with the shop's secret (401 on
`SignatureError`), then `to_events` (`PayloadError`: the body is signed but cannot be mapped),
and produces the events. Every event `to_events` returns has been decoded by the worker's own
decoder (`okrflow.events.decode_event`), so the intake never produces one the worker would
dead-letter. docs/intake.md, "Platform webhooks", has the mapping and the rules.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NoReturn, Protocol

from okrflow.events import InvalidEvent, decode_event
from okrflow.events.envelope import SHOP_PATTERN
from okrflow.events.numbers import MAX_ABS_VALUE
from okrflow.jsontypes import JsonObject, JsonValue

_SHOP = re.compile(SHOP_PATTERN)
# `ignored` is meant for a log line or a counter: printable ASCII only, and short.
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
IGNORED_MAX = 120


@dataclass(frozen=True)
class WebhookEvents:
    """The result of mapping one webhook delivery.

    `events`: structured CloudEvents (JSON objects) ready to encode and produce; `ignored`:
    set (with `events` empty) when the delivery is of a kind okrflow does not map, e.g.
    "shopify topic products/update"; the caller answers 202 and counts it.
    """

    events: list[JsonObject]
    ignored: str | None = None


class SignatureError(ValueError):
    """The request is not signed by the platform with this secret. `str(exc)` is a short
    reason: "missing signature", "malformed signature header", "bad signature",
    "expired timestamp"."""


class PayloadError(ValueError):
    """The body is signed correctly but cannot be mapped (not JSON, a missing or malformed
    field); `str(exc)` names what."""


class WebhookPlatform(Protocol):
    """A platform whose webhooks okrflow maps to CloudEvents."""

    name: str

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
        """Raise `SignatureError` unless `body` is signed with `secret` (headers: lower-cased
        names; `now`: Unix time). Raises nothing else for any headers and body; an empty
        `secret` is a configuration error (plain `ValueError`)."""
        ...

    def to_events(self, headers: Mapping[str, str], body: bytes, shop: str) -> WebhookEvents:
        """Map a verified delivery to CloudEvents of `shop`; raise `PayloadError`."""
        ...


def check_secret(secret: str) -> bytes:
    """The secret as HMAC key. An empty one would let anyone sign: refuse it loudly."""
    if not secret:
        raise ValueError("webhook secret is empty: refusing to verify against it")
    return secret.encode()


def check_shop(shop: str) -> None:
    """A malformed shop is the caller's bug, not the payload's: plain `ValueError`."""
    if not _SHOP.fullmatch(shop):
        raise ValueError(f"not a valid shop name: {shop!r}")


def ignored(text: str) -> WebhookEvents:
    return WebhookEvents([], ignored=_UNPRINTABLE.sub("?", text)[:IGNORED_MAX])


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def load_object(body: bytes) -> JsonObject:
    """The body as a JSON object (UTF-8, no NaN/Infinity), or `PayloadError`."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError, JSONDecodeError
        raise PayloadError("body is not JSON") from exc
    if not isinstance(value, dict):
        raise PayloadError("body is not a JSON object")
    return value


def get(obj: JsonObject, path: str) -> JsonValue:
    """The value at a dotted `path` of `obj` ("transactions.0.amount": a number is an index
    in a list), or None when any step is missing (JSON null and a missing field are the same
    to a mapping)."""
    value: JsonValue = obj
    for key in path.split("."):
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def text(obj: JsonObject, path: str) -> str:
    """A required identifier: a non-empty string, or an integer (written in decimal)."""
    value = get(obj, path)
    if value is None:
        raise PayloadError(f"missing field `{path}`")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise PayloadError(f"field `{path}` is not a non-empty string or an integer")


def optional_text(obj: JsonObject, path: str) -> str | None:
    """An optional identifier: as `text`, None when missing, empty or of another type."""
    value = get(obj, path)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def integer(obj: JsonObject, path: str) -> int:
    """A required integer from 0 to 2^53 (Stripe's amounts in minor units, Unix times):
    beyond, okrflow could not count it exactly (docs/events.md, `bad_number`)."""
    value = get(obj, path)
    if value is None:
        raise PayloadError(f"missing field `{path}`")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError(f"field `{path}` is not an integer >= 0")
    if value > MAX_ABS_VALUE:
        raise PayloadError(f"field `{path}` is beyond 2^53, the range okrflow counts exactly")
    return value


def amount(obj: JsonObject, path: str) -> Decimal:
    """A required amount from 0 to 2^53: a decimal string ("45.00", as Shopify sends) or a
    number. Decimal, so that sums of amounts are exact until the final conversion to float;
    an amount beyond 2^53 ("9007199254740993", "1e300") is refused, not rounded."""
    value = get(obj, path)
    if value is None:
        raise PayloadError(f"missing field `{path}`")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PayloadError(f"field `{path}` is not an amount")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise PayloadError(f"field `{path}` is not an amount") from None
    if not result.is_finite() or result < 0 or not math.isfinite(float(result)):
        raise PayloadError(f"field `{path}` is not a finite amount >= 0")
    if result > MAX_ABS_VALUE:
        raise PayloadError(f"field `{path}` is beyond 2^53, the range okrflow counts exactly")
    return result


def cloud_event(
    *, event_id: str, source: str, event_type: str, time: str, shop: str, data: JsonObject
) -> JsonObject:
    """A structured CloudEvent, checked by the worker's decoder (`PayloadError` if it would be
    dead-lettered: a time without an offset, a currency that is not three capital letters,
    an over-long id, ...)."""
    event: JsonObject = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": time,
        "shop": shop,
        "datacontenttype": "application/json",
        "data": data,
    }
    checked = decode_event(json.dumps(event).encode())
    if isinstance(checked, InvalidEvent):
        raise PayloadError(f"mapped event is not valid ({checked.reason}): {checked.error}")
    return event
