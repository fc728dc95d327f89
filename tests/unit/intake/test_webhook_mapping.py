"""Platform webhooks to okrflow CloudEvents: exact values, stable ids, and every event one the
worker's decoder accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from okrflow.events import CloudEvent, decode_event
from okrflow.intake.webhooks import PLATFORMS, PayloadError, WebhookEvents
from okrflow.intake.webhooks.stripe import major_units
from tests.webhooks import fixture, shopify_request, stripe_headers

SHOP = "salone-bella"
SECRET = "shpss_0f4c7b1de8a2"
STRIPE_SECRET = "whsec_5a0b6e2c7d9f41e3b8a6c2d0f1e7a9b3"
NOW = 1_770_715_800
WEBHOOK_ID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
shopify = PLATFORMS["shopify"]
stripe = PLATFORMS["stripe"]


def shopify_events(name: str, topic: str, webhook_id: str = WEBHOOK_ID) -> WebhookEvents:
    """Sign a fixture as Shopify would, verify it, map it."""
    body = fixture("shopify", name)
    headers = shopify_request(body, topic, webhook_id, SECRET)
    shopify.verify(headers, body, SECRET, NOW)
    return shopify.to_events(headers, body, SHOP)


def stripe_events(name: str) -> WebhookEvents:
    body = fixture("stripe", name)
    headers = stripe_headers(body, STRIPE_SECRET, NOW)
    stripe.verify(headers, body, STRIPE_SECRET, NOW)
    return stripe.to_events(headers, body, SHOP)


def decoded(event: dict[str, Any], shop: str = SHOP) -> CloudEvent:
    result = decode_event(json.dumps(event).encode())
    assert isinstance(result, CloudEvent), result
    assert result.shop == shop
    return result


def only_event(result: WebhookEvents) -> dict[str, Any]:
    assert result.ignored is None
    assert len(result.events) == 1
    decoded(result.events[0])
    return result.events[0]


SHOPIFY_MAPPED = [
    ("orders-create", "orders/create"),
    ("orders-create-guest", "orders/create"),
    ("refunds-create", "refunds/create"),
    ("refunds-create-line-items", "refunds/create"),
    ("customers-create", "customers/create"),
]
STRIPE_MAPPED = [
    "checkout-session-completed",
    "checkout-session-completed-jpy",
    "checkout-session-async-payment-succeeded",
    "charge-refunded",
    "charge-refunded-second",
]


@pytest.mark.parametrize(("name", "topic"), SHOPIFY_MAPPED)
def test_every_shopify_fixture_maps_to_a_valid_event(name: str, topic: str) -> None:
    event = only_event(shopify_events(name, topic))
    assert event["source"] == f"/shops/{SHOP}/shopify"
    assert event["id"] == f"shopify-{WEBHOOK_ID}"


@pytest.mark.parametrize("name", STRIPE_MAPPED)
def test_every_stripe_fixture_maps_to_a_valid_event(name: str) -> None:
    event = only_event(stripe_events(name))
    assert event["source"] == f"/shops/{SHOP}/stripe"
    stripe_event = json.loads(fixture("stripe", name))
    # An order's id is its Checkout Session's (counted once, whichever event counts it).
    session = stripe_event["type"].startswith("checkout.session.")
    assert event["id"] == (stripe_event["data"]["object"]["id"] if session else stripe_event["id"])


def test_shopify_order_placed() -> None:
    event = only_event(shopify_events("orders-create", "orders/create"))
    assert event == {
        "specversion": "1.0",
        "id": f"shopify-{WEBHOOK_ID}",
        "source": "/shops/salone-bella/shopify",
        "type": "order.placed",
        "time": "2026-02-10T10:04:12+01:00",
        "shop": "salone-bella",
        "datacontenttype": "application/json",
        "data": {
            "order_id": "5829104361530",
            "customer_id": "7391048202554",
            "total": 85.9,
            "currency": "EUR",
            "items": [
                {
                    "product_id": "8123047655482",
                    "variant_id": "44120093147194",
                    "sku": "SHP-ARG-250",
                    "title": "Argan Oil Shampoo",
                    "qty": 2,
                    "price": 24.0,
                },
                {
                    "product_id": "8123051917370",
                    "variant_id": "44120108122170",
                    "title": "Gift Card",
                    "qty": 1,
                    "price": 32.0,
                },
            ],
            "channel": "web",
        },
    }


def test_shopify_guest_order_is_its_own_customer() -> None:
    data = only_event(shopify_events("orders-create-guest", "orders/create"))["data"]
    assert data["customer_id"] == "guest-5829177729082"
    assert (data["total"], data["currency"], data["channel"]) == (45.0, "EUR", "pos")


def test_shopify_refund_sums_its_transactions_exactly() -> None:
    event = only_event(shopify_events("refunds-create", "refunds/create"))
    assert (event["type"], event["time"]) == ("order.refunded", "2026-02-12T16:20:41+01:00")
    # 24.00 + 5.90 in decimal: 29.9, not 29.899999999999995
    assert event["data"] == {
        "order_id": "5829104361530",
        "amount": 29.9,
        "currency": "EUR",
        "refund_id": "925819830330",
    }


def test_shopify_refund_without_transactions_sums_its_line_items() -> None:
    data = only_event(shopify_events("refunds-create-line-items", "refunds/create"))["data"]
    assert data == {
        "order_id": "5829177729082",
        "amount": 19.75,
        "currency": "EUR",
        "refund_id": "925820125242",
    }


def refund_with(transactions: list[dict[str, Any]]) -> bytes:
    refund = json.loads(fixture("shopify", "refunds-create"))
    refund["transactions"] = transactions
    return json.dumps(refund).encode()


def map_shopify(body: bytes, topic: str) -> WebhookEvents:
    return shopify.to_events(shopify_request(body, topic, WEBHOOK_ID, SECRET), body, SHOP)


def test_shopify_failed_refund_transactions_are_not_counted() -> None:
    body = refund_with(
        [
            {"kind": "refund", "status": "failure", "amount": "24.00", "currency": "EUR"},
            {"kind": "refund", "status": "success", "amount": "5.90", "currency": "EUR"},
        ]
    )
    assert only_event(map_shopify(body, "refunds/create"))["data"]["amount"] == 5.9
    body = refund_with([{"kind": "refund", "status": "error", "amount": "24", "currency": "EUR"}])
    result = map_shopify(body, "refunds/create")
    assert result == WebhookEvents([], "shopify refund without a successful transaction")


def test_shopify_refund_in_two_currencies_is_a_payload_error() -> None:
    body = refund_with(
        [
            {"kind": "refund", "status": "success", "amount": "1", "currency": "EUR"},
            {"kind": "refund", "status": "success", "amount": "1", "currency": "USD"},
        ]
    )
    with pytest.raises(PayloadError, match="several currencies"):
        map_shopify(body, "refunds/create")


def test_shopify_customer_created() -> None:
    event = only_event(shopify_events("customers-create", "customers/create"))
    assert (event["type"], event["time"]) == ("customer.created", "2026-02-10T09:58:40+01:00")
    assert event["data"] == {"customer_id": "7391048202554"}


def test_shopify_event_id_is_stable_across_retries() -> None:
    # Shopify retries a delivery with the same X-Shopify-Webhook-Id: the same event, which
    # the worker then counts once.
    first = shopify_events("orders-create", "orders/create")
    retry = shopify_events("orders-create", "orders/create")
    assert first == retry
    other = shopify_events("orders-create", "orders/create", webhook_id="another-delivery")
    assert other.events[0]["id"] == "shopify-another-delivery"


def test_shopify_unmapped_topic_is_ignored() -> None:
    result = shopify_events("products-update", "products/update")
    assert result == WebhookEvents([], ignored="shopify topic products/update")


def test_shopify_ignored_text_is_printable_and_short() -> None:
    body = b"{}"
    headers = shopify_request(body, "x/\x00\u202e" + "y" * 500, WEBHOOK_ID, SECRET)
    ignored = shopify.to_events(headers, body, SHOP).ignored
    assert ignored is not None
    assert ignored.startswith("shopify topic x/??y")
    assert ignored.isprintable() and ignored.isascii() and len(ignored) == 120


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe{}", "body is not JSON"),
        (b'{"id": NaN}', "body is not JSON"),
        (b"[" * 100_000, "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b"{}", "missing field `id`"),
    ],
)
def test_shopify_unreadable_signed_body_is_a_payload_error(body: bytes, message: str) -> None:
    headers = shopify_request(body, "orders/create", WEBHOOK_ID, SECRET)
    shopify.verify(headers, body, SECRET, NOW)
    with pytest.raises(PayloadError, match=message.replace("`", ".")):
        shopify.to_events(headers, body, SHOP)


def order_with(**changes: Any) -> bytes:
    order = json.loads(fixture("shopify", "orders-create"))
    for key, value in changes.items():
        if value is None:
            order.pop(key, None)
        else:
            order[key] = value
    return json.dumps(order).encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"created_at": None}, "missing field `created_at`"),
        ({"created_at": "2026-02-10T10:04:12"}, "(not_cloudevent).*offset"),
        ({"created_at": "yesterday"}, "not_cloudevent"),
        ({"created_at": 1770714252}, "`created_at` is not a string"),
        ({"total_price": None}, "missing field `total_price`"),
        ({"total_price": "-5.00"}, "`total_price` is not a finite amount >= 0"),
        ({"total_price": "NaN"}, "`total_price` is not a finite amount >= 0"),
        ({"total_price": "1e400"}, "`total_price` is not a finite amount >= 0"),
        ({"total_price": "1e300"}, "`total_price` is beyond 2\\^53"),
        ({"total_price": "9007199254740993"}, "`total_price` is beyond 2\\^53"),
        ({"total_price": 1e300}, "`total_price` is beyond 2\\^53"),
        ({"total_price": "free"}, "`total_price` is not an amount"),
        ({"total_price": True}, "`total_price` is not an amount"),
        ({"currency": "eur"}, "invalid_data.*currency"),
        ({"customer": {"email": "x@example.com"}}, "missing field `customer.id`"),
        ({"id": ""}, "`id` is not a non-empty string"),
    ],
)
def test_shopify_order_with_bad_fields_is_a_payload_error(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(PayloadError, match=message.replace("`", ".")):
        map_shopify(order_with(**changes), "orders/create")


def test_shopify_order_accepts_numbers_and_leaves_odd_items_out() -> None:
    body = order_with(
        total_price=12,
        line_items=[{"title": "x", "quantity": "2", "price": "n/a"}, "not an item"],
        source_name="",
    )
    data = only_event(map_shopify(body, "orders/create"))["data"]
    assert data["total"] == 12.0
    assert data["items"] == [{"title": "x"}]
    assert "channel" not in data


@pytest.mark.parametrize(
    ("header", "message"),
    [("x-shopify-topic", "X-Shopify-Topic"), ("x-shopify-webhook-id", "X-Shopify-Webhook-Id")],
)
def test_shopify_missing_headers_are_payload_errors(header: str, message: str) -> None:
    body = fixture("shopify", "orders-create")
    headers = shopify_request(body, "orders/create", WEBHOOK_ID, SECRET)
    del headers[header]
    with pytest.raises(PayloadError, match=f"missing header {message}"):
        shopify.to_events(headers, body, SHOP)


def test_shopify_webhook_id_that_cannot_be_an_event_id_is_a_payload_error() -> None:
    body = fixture("shopify", "customers-create")
    for webhook_id in ("x" * 250, "a\x00b"):
        headers = shopify_request(body, "customers/create", "ok", SECRET)
        headers["x-shopify-webhook-id"] = webhook_id
        with pytest.raises(PayloadError, match=r"\$\.id"):
            shopify.to_events(headers, body, SHOP)


@pytest.mark.parametrize("platform", ["shopify", "stripe"])
def test_a_malformed_shop_is_the_callers_error(platform: str) -> None:
    with pytest.raises(ValueError, match="shop") as caught:
        PLATFORMS[platform].to_events({"x-shopify-topic": "orders/create"}, b"{}", "Bad Shop")
    assert not isinstance(caught.value, PayloadError)


# Stripe


def test_stripe_checkout_session_completed() -> None:
    event = only_event(stripe_events("checkout-session-completed"))
    assert event == {
        "specversion": "1.0",
        "id": "cs_live_a1Hk3Vb7QwTz9LmNpR2sXyUc4DeFgJ6oKiAqBtW8vYrZnM0lPx",
        "source": "/shops/salone-bella/stripe",
        "type": "order.placed",
        "time": "2026-02-10T09:30:00+00:00",
        "shop": "salone-bella",
        "datacontenttype": "application/json",
        "data": {
            "order_id": "cs_live_a1Hk3Vb7QwTz9LmNpR2sXyUc4DeFgJ6oKiAqBtW8vYrZnM0lPx",
            "customer_id": "cus_Ra8Kd2LmQx4VbN",
            "total": 49.9,
            "currency": "EUR",
            "payment_intent": "pi_3QxR6zE2x0Nt3kLm1aBcDeFg",
        },
    }


def test_stripe_zero_decimal_currency_is_not_divided() -> None:
    event = only_event(stripe_events("checkout-session-completed-jpy"))
    assert event["time"] == "2026-02-10T11:45:07+00:00"
    assert event["data"] == {
        "order_id": "cs_live_b1Tq8Wc2RxYa5NoLpS3tZuVd6EfGhK7pLjBrCuX9wZsAoN1mQy",
        "customer_id": "kenji.sato@example.jp",  # no Stripe customer: the email
        "total": 3500.0,
        "currency": "JPY",
        "payment_intent": "pi_3QxT1yE2x0Nt3kLm0zYxWvUt",
    }


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (4990, "eur", 49.9),
        (1, "usd", 0.01),
        (0, "usd", 0.0),
        (3500, "jpy", 3500.0),
        (3500, "JPY", 3500.0),
        (150000, "krw", 150000.0),
        (5120, "kwd", 5.12),
        (100, "isk", 1.0),  # Stripe writes ISK with two decimals
    ],
)
def test_stripe_major_units(minor: int, currency: str, expected: float) -> None:
    assert major_units(minor, currency) == expected


def test_stripe_charge_refunded() -> None:
    event = only_event(stripe_events("charge-refunded"))
    assert event["type"] == "order.refunded"
    assert event["time"] == "2026-02-12T15:20:41+00:00"
    assert event["data"] == {
        "order_id": "pi_3QxR6zE2x0Nt3kLm1aBcDeFg",
        "amount": 15.0,
        "currency": "EUR",
        "charge_id": "ch_3QxR6zE2x0Nt3kLm1qWeRtYu",
    }


def test_stripe_second_partial_refund_counts_only_itself() -> None:
    # amount_refunded is the charge's running total (49.90); 15.00 was refunded before.
    data = only_event(stripe_events("charge-refunded-second"))["data"]
    assert data["amount"] == 34.9


def stripe_with(name: str, change: Any) -> bytes:
    event = json.loads(fixture("stripe", name))
    change(event)
    return json.dumps(event).encode()


def map_stripe(body: bytes) -> WebhookEvents:
    return stripe.to_events(stripe_headers(body, STRIPE_SECRET, NOW), body, SHOP)


def test_stripe_refund_without_previous_attributes_or_payment_intent() -> None:
    def change(event: dict[str, Any]) -> None:
        del event["data"]["previous_attributes"]
        event["data"]["object"]["payment_intent"] = None

    data = only_event(map_stripe(stripe_with("charge-refunded-second", change)))["data"]
    assert (data["order_id"], data["amount"]) == ("ch_3QxR6zE2x0Nt3kLm1qWeRtYu", 49.9)


def test_stripe_session_customer_falls_back_to_the_session() -> None:
    def change(event: dict[str, Any]) -> None:
        session = event["data"]["object"]
        session["customer"] = None
        session["customer_details"] = None

    data = only_event(map_stripe(stripe_with("checkout-session-completed", change)))["data"]
    assert data["customer_id"] == data["order_id"]


def test_stripe_setup_session_is_ignored() -> None:
    def change(event: dict[str, Any]) -> None:
        event["data"]["object"].update(mode="setup", amount_total=None, currency=None)

    result = map_stripe(stripe_with("checkout-session-completed", change))
    assert result == WebhookEvents([], ignored="stripe checkout session in setup mode")


def test_shopify_amount_at_2_to_the_53_is_counted() -> None:
    data = only_event(map_shopify(order_with(total_price="9007199254740992"), "orders/create"))
    assert data["data"]["total"] == 2**53


def test_stripe_unpaid_completed_session_counts_nothing() -> None:
    assert stripe_events("checkout-session-completed-unpaid") == WebhookEvents(
        [], ignored="stripe checkout session completed with payment_status unpaid"
    )


def test_stripe_delayed_payment_that_succeeds_counts_the_order_under_its_session() -> None:
    event = only_event(stripe_events("checkout-session-async-payment-succeeded"))
    session = json.loads(fixture("stripe", "checkout-session-completed-unpaid"))["data"]["object"]
    assert event["id"] == event["data"]["order_id"] == session["id"]
    assert event["type"] == "order.placed"
    assert event["time"] == "2026-02-13T09:34:20+00:00"  # when the payment succeeded
    assert event["data"]["total"] == 129.0
    assert event["data"]["payment_intent"] == session["payment_intent"]


def test_stripe_delayed_payment_that_fails_counts_nothing() -> None:
    assert stripe_events("checkout-session-async-payment-failed") == WebhookEvents(
        [], ignored="stripe checkout session payment failed"
    )


@pytest.mark.parametrize(
    ("status", "counted"),
    [("paid", True), ("no_payment_required", True), ("unpaid", False), (None, False)],
)
def test_stripe_completed_session_counts_only_when_paid(status: str | None, counted: bool) -> None:
    def change(event: dict[str, Any]) -> None:
        event["data"]["object"]["payment_status"] = status

    result = map_stripe(stripe_with("checkout-session-completed", change))
    assert bool(result.events) is counted
    if not counted:
        assert result.ignored == (
            f"stripe checkout session completed with payment_status {status or 'missing'}"
        )


def test_stripe_completed_and_succeeded_of_one_session_are_one_event() -> None:
    """Should a session be counted by both (a paid completed, then a succeeded), the worker
    sees the same (shop, id) twice and counts it once."""

    def paid(event: dict[str, Any]) -> None:
        event["data"]["object"]["payment_status"] = "paid"

    completed = only_event(map_stripe(stripe_with("checkout-session-completed-unpaid", paid)))
    succeeded = only_event(stripe_events("checkout-session-async-payment-succeeded"))
    assert completed["id"] == succeeded["id"]


def test_stripe_event_id_is_stable() -> None:
    assert stripe_events("charge-refunded") == stripe_events("charge-refunded")


def test_stripe_unmapped_type_is_ignored() -> None:
    result = stripe_events("payment-intent-succeeded")
    assert result == WebhookEvents([], ignored="stripe event payment_intent.succeeded")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("created"), "missing field `created`"),
        (lambda e: e.update(created=-1), "`created` is not an integer >= 0"),
        (lambda e: e.update(created=10**20), "`created` is beyond 2\\^53"),
        (lambda e: e.update(created=2**53), "`created` is not a Unix time"),
        (lambda e: e.update(created=32_503_680_000), "bad_time"),  # year 3000
        (lambda e: e.pop("data"), "missing field `data.object`"),
        (lambda e: e.pop("id"), "missing field `id`"),
        (lambda e: e["data"]["object"].update(amount_total=None), "`data.object.amount_total`"),
        (lambda e: e["data"]["object"].update(amount_total=49.9), "`data.object.amount_total`"),
        (lambda e: e["data"]["object"].update(amount_total=10**20), "`amount_total` is beyond 2"),
        (lambda e: e["data"]["object"].update(currency="euro"), "invalid_data.*currency"),
    ],
)
def test_stripe_event_with_bad_fields_is_a_payload_error(change: Any, message: str) -> None:
    with pytest.raises(PayloadError, match=message.replace("`", ".")):
        map_stripe(stripe_with("checkout-session-completed", change))


def test_stripe_refund_above_its_running_total_is_a_payload_error() -> None:
    def change(event: dict[str, Any]) -> None:
        event["data"]["previous_attributes"]["amount_refunded"] = 9999

    with pytest.raises(PayloadError, match="previous_attributes"):
        map_stripe(stripe_with("charge-refunded-second", change))


@pytest.mark.parametrize("body", [b"not json", b"", b"\xc3\x28", b'"evt"', b"[" * 100_000])
def test_stripe_unreadable_signed_body_is_a_payload_error(body: bytes) -> None:
    headers = stripe_headers(body, STRIPE_SECRET, NOW)
    stripe.verify(headers, body, STRIPE_SECRET, NOW)
    with pytest.raises(PayloadError, match="body is not"):
        stripe.to_events(headers, body, SHOP)
