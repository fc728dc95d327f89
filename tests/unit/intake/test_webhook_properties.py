"""Properties of the webhook platforms over arbitrary input: a signed body always verifies,
and mapping raises nothing but PayloadError, and produces only events the worker accepts."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from okrflow.events import CloudEvent, decode_event
from okrflow.intake.webhooks import PLATFORMS, PayloadError
from tests.webhooks import fixture, shopify_request, stripe_headers

SECRET = "whsec_property"
NOW = 1_770_715_800

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)

SHOPIFY = {
    "orders-create": "orders/create",
    "orders-create-guest": "orders/create",
    "refunds-create": "refunds/create",
    "refunds-create-line-items": "refunds/create",
    "customers-create": "customers/create",
}
STRIPE = ["checkout-session-completed", "charge-refunded", "charge-refunded-second"]


def mutate(document: dict[str, Any], data: st.DataObject) -> None:
    """Replace up to three values anywhere in `document` by arbitrary JSON."""
    for _ in range(data.draw(st.integers(1, 3))):
        target: Any = document
        while True:
            keys = list(target) if isinstance(target, dict) else list(range(len(target)))
            if not keys:
                break
            key = data.draw(st.sampled_from(keys))
            child = target[key]
            if isinstance(child, dict | list) and child and data.draw(st.booleans()):
                target = child
                continue
            target[key] = data.draw(json_values)
            break


def check(result: Any) -> None:
    for event in result.events:
        decoded = decode_event(json.dumps(event).encode())
        assert isinstance(decoded, CloudEvent), decoded
        assert decoded.shop == "salone-bella"


@given(body=st.binary(max_size=500), t=st.integers(NOW - 300, NOW + 300))
def test_a_signed_body_always_verifies(body: bytes, t: int) -> None:
    PLATFORMS["shopify"].verify(shopify_request(body, "x", "y", SECRET), body, SECRET, NOW)
    PLATFORMS["stripe"].verify(stripe_headers(body, SECRET, t), body, SECRET, NOW)


@given(name=st.sampled_from(sorted(SHOPIFY)), data=st.data())
def test_shopify_mapping_raises_only_payload_errors(name: str, data: st.DataObject) -> None:
    document = json.loads(fixture("shopify", name))
    mutate(document, data)
    body = json.dumps(document).encode()
    headers = shopify_request(body, SHOPIFY[name], "delivery-1", SECRET)
    try:
        result = PLATFORMS["shopify"].to_events(headers, body, "salone-bella")
    except PayloadError:
        return
    check(result)


@given(name=st.sampled_from(STRIPE), data=st.data())
def test_stripe_mapping_raises_only_payload_errors(name: str, data: st.DataObject) -> None:
    document = json.loads(fixture("stripe", name))
    mutate(document, data)
    body = json.dumps(document).encode()
    try:
        result = PLATFORMS["stripe"].to_events(
            stripe_headers(body, SECRET, NOW), body, "salone-bella"
        )
    except PayloadError:
        return
    check(result)
