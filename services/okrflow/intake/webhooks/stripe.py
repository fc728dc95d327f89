"""Stripe webhooks: the `Stripe-Signature` scheme, and checkout sessions and refunds.

Signature: `Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...][,v0=...]`. The signed
payload is "<t>.<raw body>"; each `v1` is hex(HMAC-SHA256(endpoint secret, signed payload)).
The request is accepted when any `v1` matches (compared in constant time; Stripe sends two
while a secret is being rolled) and `t` is within 300 seconds of now, either way. Other
schemes (`v0`, test-mode leftovers) are ignored, as Stripe's own libraries do.

Mapping (docs/intake.md, "Platform webhooks"), as Stripe documents the Checkout flow: a
`checkout.session.completed` whose `payment_status` is `paid` or `no_payment_required` ->
`order.placed`; an unpaid one (a delayed method: SEPA debit, bank transfer, ...) counts
nothing until its `checkout.session.async_payment_succeeded` -> `order.placed`; its
`checkout.session.async_payment_failed` counts nothing. `charge.refunded` ->
`order.refunded`; any other event type is ignored. An order's event id is its Checkout
Session id (`cs_...`), whichever of the two events counts it, so a session is counted once
even if both arrive as paid; a refund's is Stripe's event id (`evt_...`). Both are the same on
every retry. The time is the event's `created`. Amounts are in minor units: see
`major_units`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from okrflow.intake.webhooks.base import (
    PayloadError,
    SignatureError,
    WebhookEvents,
    check_secret,
    check_shop,
    cloud_event,
    get,
    ignored,
    integer,
    load_object,
    optional_text,
    text,
)
from okrflow.jsontypes import JsonObject

SIGNATURE_HEADER = "stripe-signature"
TOLERANCE_SECONDS = 300

# Currencies whose Stripe amounts are whole units (no division), from Stripe's list of
# zero-decimal currencies.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
# Currencies whose Stripe amounts are thousandths (Stripe's three-decimal currencies).
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def major_units(minor: int, currency: str) -> float:
    """A Stripe amount (minor units) in the currency's units: JPY 500 -> 500.0, EUR 4990 ->
    49.9, KWD 5120 -> 5.12; every other currency has two decimals."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return float(minor)
    return float(Decimal(minor) / (1000 if code in THREE_DECIMAL else 100))


def sign(body: bytes, secret: str, t: int | str) -> str:
    """The hex `v1` signature Stripe sends for `body` at time `t`."""
    payload = f"{t}.".encode() + body
    return hmac.new(check_secret(secret), payload, hashlib.sha256).hexdigest()


def _parse_header(header: str) -> tuple[str, list[str]]:
    """(t as sent, the v1 signatures), or SignatureError if the header is malformed."""
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed signature header")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise SignatureError("malformed signature header")
    if not signatures:
        raise SignatureError("malformed signature header")
    return timestamps[0], signatures


class Stripe:
    """Stripe webhook endpoints (events of any API version; the fields read are stable)."""

    name: str = "stripe"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
        check_secret(secret)
        header = headers.get(SIGNATURE_HEADER)
        if header is None or not header.strip():
            raise SignatureError("missing signature")
        t, signatures = _parse_header(header)
        expected = sign(body, secret, t)
        # compare_digest takes only ASCII text: only well-formed hex is compared at all, and
        # every candidate is compared (no early exit on the first match).
        matched = False
        for candidate in signatures:
            if _HEX.fullmatch(candidate) and hmac.compare_digest(expected, candidate.lower()):
                matched = True
        if not matched:
            raise SignatureError("bad signature")
        # `not <=` so that a NaN `now` fails closed.
        if not abs(now - int(t)) <= TOLERANCE_SECONDS:
            raise SignatureError("expired timestamp")

    def to_events(self, headers: Mapping[str, str], body: bytes, shop: str) -> WebhookEvents:
        check_shop(shop)
        event = load_object(body)
        event_id = text(event, "id")
        event_type = text(event, "type")
        mapping = _TYPES.get(event_type)
        if mapping is None:
            return ignored(f"stripe event {event_type}")
        obj = get(event, "data.object")
        if not isinstance(obj, dict):
            raise PayloadError("missing field `data.object`")
        mapped = mapping(event)
        if isinstance(mapped, WebhookEvents):
            return mapped
        okrflow_type, data = mapped
        if okrflow_type == "order.placed":
            event_id = str(data["order_id"])  # the session: counted once, by whichever event
        created = integer(event, "created")
        try:
            time = datetime.fromtimestamp(created, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            raise PayloadError("field `created` is not a Unix time okrflow can use") from None
        produced = cloud_event(
            event_id=event_id,
            source=f"/shops/{shop}/stripe",
            event_type=okrflow_type,
            time=time,
            shop=shop,
            data=data,
        )
        return WebhookEvents([produced])


Mapped = tuple[str, JsonObject] | WebhookEvents


def _currency(event: JsonObject) -> str:
    return text(event, "data.object.currency").upper()


# A completed session's `payment_status` that means the money is there (Stripe's values:
# paid, unpaid, no_payment_required).
_PAID = frozenset({"paid", "no_payment_required"})


def _session_completed(event: JsonObject) -> Mapped:
    if get(event, "data.object.mode") == "setup":
        # A setup session saves a payment method: nothing is bought.
        return WebhookEvents([], ignored="stripe checkout session in setup mode")
    status = get(event, "data.object.payment_status")
    if status not in _PAID:
        # A delayed payment method: the order counts on async_payment_succeeded, if ever.
        shown = status if isinstance(status, str) else "missing"
        return ignored(f"stripe checkout session completed with payment_status {shown}")
    return _order_placed(event)


def _session_payment_failed(event: JsonObject) -> Mapped:
    return ignored("stripe checkout session payment failed")


def _order_placed(event: JsonObject) -> Mapped:
    """A paid Checkout Session (completed and paid, or its delayed payment succeeded)."""
    session_id = text(event, "data.object.id")
    customer = (
        optional_text(event, "data.object.customer")
        or optional_text(event, "data.object.customer.id")  # if ever expanded
        or optional_text(event, "data.object.customer_details.email")
        or session_id
    )
    currency = _currency(event)
    data: JsonObject = {
        "order_id": session_id,
        "customer_id": customer,
        "total": major_units(integer(event, "data.object.amount_total"), currency),
        "currency": currency,
    }
    payment_intent = optional_text(event, "data.object.payment_intent")
    if payment_intent is not None:
        # What a charge.refunded's order_id is: lets the two be matched.
        data["payment_intent"] = payment_intent
    return "order.placed", data


def _order_refunded(event: JsonObject) -> Mapped:
    charge_id = text(event, "data.object.id")
    order_id = optional_text(event, "data.object.payment_intent") or charge_id
    currency = _currency(event)
    refunded = integer(event, "data.object.amount_refunded")
    # `amount_refunded` is the charge's running total: a second partial refund sends the
    # sum of both. When the event says what it was before, the refund is the difference.
    before = get(event, "data.previous_attributes.amount_refunded")
    if before is not None:
        before = integer(event, "data.previous_attributes.amount_refunded")
        if before > refunded:
            raise PayloadError(
                "field `data.previous_attributes.amount_refunded` is above `amount_refunded`"
            )
        refunded -= before
    data: JsonObject = {
        "order_id": order_id,
        "amount": major_units(refunded, currency),
        "currency": currency,
        "charge_id": charge_id,
    }
    return "order.refunded", data


_TYPES: dict[str, Callable[[JsonObject], Mapped]] = {
    "checkout.session.completed": _session_completed,
    "checkout.session.async_payment_succeeded": _order_placed,
    "checkout.session.async_payment_failed": _session_payment_failed,
    "charge.refunded": _order_refunded,
}
