"""Shopify webhooks: HMAC-SHA256 of the raw body, and orders, refunds and customers.

Signature: `X-Shopify-Hmac-Sha256` is base64(HMAC-SHA256(app secret, raw body)), compared in
constant time. Shopify signs the body only: the topic and webhook-id headers are not covered,
and there is no signed timestamp, so a captured delivery can be replayed (the event id, from
`X-Shopify-Webhook-Id`, makes a replay with the same id a duplicate the worker skips).

Mapping (docs/intake.md, "Platform webhooks"): `orders/create` -> `order.placed`,
`refunds/create` -> `order.refunded`, `customers/create` -> `customer.created`; any other
topic is ignored. The event id is "shopify-<X-Shopify-Webhook-Id>", which Shopify keeps
across its retries of a delivery; the time is the resource's `created_at`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
from collections.abc import Callable, Mapping
from decimal import Decimal

from okrflow.intake.webhooks.base import (
    PayloadError,
    SignatureError,
    WebhookEvents,
    amount,
    check_secret,
    check_shop,
    cloud_event,
    get,
    ignored,
    load_object,
    optional_text,
    text,
)
from okrflow.jsontypes import JsonObject

SIGNATURE_HEADER = "x-shopify-hmac-sha256"
TOPIC_HEADER = "x-shopify-topic"
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"

# Refund transactions that moved no money (Shopify's transaction statuses).
_FAILED = frozenset({"failure", "error"})


def sign(body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` value Shopify sends for `body`."""
    digest = hmac.new(check_secret(secret), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class Shopify:
    """Shopify Admin webhooks (JSON format)."""

    name: str = "shopify"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
        expected = sign(body, secret)
        received = headers.get(SIGNATURE_HEADER)
        if received is None or not received.strip():
            raise SignatureError("missing signature")
        received = received.strip()
        # compare_digest takes only ASCII text; anything else cannot be a base64 digest.
        if not received.isascii() or not hmac.compare_digest(expected, received):
            raise SignatureError("bad signature")

    def to_events(self, headers: Mapping[str, str], body: bytes, shop: str) -> WebhookEvents:
        check_shop(shop)
        topic = headers.get(TOPIC_HEADER, "").strip()
        if not topic:
            raise PayloadError("missing header X-Shopify-Topic")
        mapping = _TOPICS.get(topic)
        if mapping is None:
            return ignored(f"shopify topic {topic}")
        webhook_id = headers.get(WEBHOOK_ID_HEADER, "").strip()
        if not webhook_id:
            raise PayloadError("missing header X-Shopify-Webhook-Id")
        payload = load_object(body)
        mapped = mapping(payload)
        if isinstance(mapped, WebhookEvents):
            return mapped
        event_type, data = mapped
        created_at = get(payload, "created_at")
        if created_at is None:
            raise PayloadError("missing field `created_at`")
        if not isinstance(created_at, str):
            raise PayloadError("field `created_at` is not a string")
        event = cloud_event(
            event_id=f"shopify-{webhook_id}",
            source=f"/shops/{shop}/shopify",
            event_type=event_type,
            time=created_at,
            shop=shop,
            data=data,
        )
        return WebhookEvents([event])


Mapped = tuple[str, JsonObject] | WebhookEvents


def _order_placed(order: JsonObject) -> Mapped:
    order_id = text(order, "id")
    customer = get(order, "customer")
    # A guest checkout has no customer: each guest order is its own customer.
    customer_id = text(order, "customer.id") if customer is not None else f"guest-{order_id}"
    data: JsonObject = {
        "order_id": order_id,
        "customer_id": customer_id,
        "total": float(amount(order, "total_price")),
        "currency": text(order, "currency"),
    }
    line_items = get(order, "line_items")
    if isinstance(line_items, list):
        data["items"] = [_item(item) for item in line_items if isinstance(item, dict)]
    channel = optional_text(order, "source_name")
    if channel is not None:
        data["channel"] = channel
    return "order.placed", data


def _item(line: JsonObject) -> JsonObject:
    """A line item, kept small: product and variant ids, sku, title, quantity, unit price
    (fields missing or of an unexpected type are left out; `items` is free-form)."""
    item: JsonObject = {}
    for key, path in (
        ("product_id", "product_id"),
        ("variant_id", "variant_id"),
        ("sku", "sku"),
        ("title", "title"),
    ):
        value = optional_text(line, path)
        if value is not None:
            item[key] = value
    quantity = line.get("quantity")
    if isinstance(quantity, int) and not isinstance(quantity, bool):
        item["qty"] = quantity
    if line.get("price") is not None:
        with contextlib.suppress(PayloadError):  # a free-form field: left out if odd
            item["price"] = float(amount(line, "price"))
    return item


def _order_refunded(refund: JsonObject) -> Mapped:
    order_id = text(refund, "order_id")
    transactions = get(refund, "transactions")
    total: Decimal
    if isinstance(transactions, list) and transactions:
        paid = [
            (index, t)
            for index, t in enumerate(transactions)
            if isinstance(t, dict)
            and t.get("kind", "refund") == "refund"
            and t.get("status") not in _FAILED
        ]
        if not paid:
            return WebhookEvents([], ignored="shopify refund without a successful transaction")
        total = sum((amount(refund, f"transactions.{i}.amount") for i, _ in paid), start=Decimal(0))
        currencies = {text(refund, f"transactions.{i}.currency") for i, _ in paid}
    else:
        lines = get(refund, "refund_line_items")
        if not isinstance(lines, list) or not lines:
            return WebhookEvents([], ignored="shopify refund without transactions or line items")
        total = sum(
            (
                amount(refund, f"refund_line_items.{i}.subtotal_set.shop_money.amount")
                for i in range(len(lines))
            ),
            start=Decimal(0),
        )
        currencies = {
            text(refund, f"refund_line_items.{i}.subtotal_set.shop_money.currency_code")
            for i in range(len(lines))
        }
    if len(currencies) != 1:
        raise PayloadError(f"refund amounts in several currencies: {sorted(currencies)}")
    data: JsonObject = {
        "order_id": order_id,
        "amount": float(total),
        "currency": currencies.pop(),
    }
    refund_id = optional_text(refund, "id")
    if refund_id is not None:
        data["refund_id"] = refund_id
    return "order.refunded", data


def _customer_created(customer: JsonObject) -> Mapped:
    return "customer.created", {"customer_id": text(customer, "id")}


_TOPICS: dict[str, Callable[[JsonObject], Mapped]] = {
    "orders/create": _order_placed,
    "refunds/create": _order_refunded,
    "customers/create": _customer_created,
}
