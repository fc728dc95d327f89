"""The intake's routes in process (httpx over ASGI), with a recording sink: statuses, bodies,
all-or-nothing batches, shop scoping, limits. The real broker is in tests/integration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from okrflow.intake.app import IntakeParts, build_app
from okrflow.intake.metrics import IntakeMetrics
from okrflow.intake.openapi import openapi_document
from okrflow.intake.ratelimit import RateLimiter
from okrflow.settings import Settings
from tests.factories import cloud_event
from tests.webhooks import fixture, shopify_request, stripe_headers

SHOP = "salone-bella"
TOKENS = {"good": SHOP, "other": "another-shop"}
AUTH = {"Authorization": "Bearer good"}
STRUCTURED = {**AUTH, "Content-Type": "application/cloudevents+json"}
BATCH = {**AUTH, "Content-Type": "application/cloudevents-batch+json"}


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.fail = False

    async def send_all(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        if self.fail:
            raise KafkaConnectionError("broker down")
        self.sent.extend(messages)

    async def reachable(self, timeout: float) -> bool:
        return not self.fail


def _parts(sink: RecordingSink, **overrides: Any) -> IntakeParts:
    registry = CollectorRegistry()
    values: dict[str, Any] = {
        "sink": sink,
        "authenticate": TOKENS.get,
        "webhook_secret": lambda shop, platform: None,
        "progress": lambda shop: {"at": "2026-02-01T00:00:00+00:00", "shops": [{"shop": shop}]},
        "metrics": IntakeMetrics(registry),
        "registry": registry,
        "limiter": RateLimiter(0, 1),
        "openapi": openapi_document(Settings()),
        "max_request_bytes": 64 * 1024,
        "max_event_bytes": 16 * 1024,
        "max_batch_events": 5,
    }
    values.update(overrides)
    return IntakeParts(**values)


def request(
    sink: RecordingSink, method: str, path: str, *, parts: IntakeParts | None = None, **kw: Any
) -> httpx.Response:
    app = build_app(parts or _parts(sink))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


def test_structured_event_is_produced_keyed_by_shop() -> None:
    sink = RecordingSink()
    event = cloud_event("e-1", shop=SHOP)
    response = request(sink, "POST", "/v1/events", headers=STRUCTURED, content=json.dumps(event))
    assert (response.status_code, response.json()) == (202, {"accepted": 1})
    [(key, value)] = sink.sent
    assert key == SHOP.encode() and json.loads(value) == event


def test_binary_mode_event_is_produced_structured() -> None:
    sink = RecordingSink()
    headers = {
        **AUTH, "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "b-1",
        "ce-source": "/shops/salone-bella/pos", "ce-type": "customer.created",
        "ce-time": "2026-02-10T10:00:00%2B01:00", "ce-shop": SHOP,
    }  # fmt: skip
    response = request(sink, "POST", "/v1/events", headers=headers,
                       content=json.dumps({"customer_id": "c-1"}))  # fmt: skip
    assert response.status_code == 202, response.text
    produced = json.loads(sink.sent[0][1])
    assert produced["id"] == "b-1" and produced["data"] == {"customer_id": "c-1"}
    assert produced["time"] == "2026-02-10T10:00:00+01:00"  # percent-decoded


def test_a_batch_is_all_or_nothing_with_index_and_pointer() -> None:
    sink = RecordingSink()
    good = [cloud_event(f"e-{i}", shop=SHOP) for i in range(3)]
    assert request(sink, "POST", "/v1/events", headers=BATCH,
                   content=json.dumps(good)).json() == {"accepted": 3}  # fmt: skip
    bad = [*good, {**cloud_event("x", shop=SHOP), "time": "yesterday"},
           {**cloud_event("y", event_type="order.placed", shop=SHOP), "data": {"total": -1}}]  # fmt: skip
    response = request(sink, "POST", "/v1/events", headers=BATCH, content=json.dumps(bad))
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert [(p["index"], p["pointer"], p["reason"]) for p in problems] == [
        (3, "/time", "not_cloudevent"), (4, "/data/total", "invalid_data"),
    ]  # fmt: skip
    assert len(sink.sent) == 3  # only the first request's


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, b"{}", 401),
        ({"Authorization": "Bearer nope"}, b"{}", 401),
        ({"Authorization": "Basic good"}, b"{}", 401),
        ({**AUTH, "Content-Type": "text/plain"}, b"{}", 415),
        ({**AUTH}, b"{}", 415),
        (STRUCTURED, b"{not json", 400),
        (STRUCTURED, b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}", 400),
        (BATCH, b"{}", 422),
        (BATCH, b"[]", 422),
        (BATCH, json.dumps([cloud_event(f"e{i}", shop=SHOP) for i in range(6)]).encode(), 413),
        (STRUCTURED, b" " * (64 * 1024 + 1), 413),
    ],
)
def test_refusals(headers: dict[str, str], body: bytes, status: int) -> None:
    sink = RecordingSink()
    response = request(sink, "POST", "/v1/events", headers=headers, content=body)
    assert response.status_code == status, response.text
    assert "error" in response.json()
    assert sink.sent == []


def test_an_event_for_another_shop_is_forbidden_and_nothing_is_produced() -> None:
    sink = RecordingSink()
    batch = [cloud_event("a", shop=SHOP), cloud_event("b", shop="another-shop")]
    response = request(sink, "POST", "/v1/events", headers=BATCH, content=json.dumps(batch))
    assert response.status_code == 403
    assert response.json()["problems"][0]["index"] == 1
    assert sink.sent == []


def test_broker_down_is_503_with_retry_after() -> None:
    sink = RecordingSink()
    sink.fail = True
    response = request(sink, "POST", "/v1/events", headers=STRUCTURED,
                       content=json.dumps(cloud_event("e", shop=SHOP)))  # fmt: skip
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert request(sink, "GET", "/readyz").status_code == 503
    assert request(sink, "GET", "/healthz").status_code == 200


def test_rate_limit_answers_429_with_retry_after() -> None:
    sink = RecordingSink()
    now = [0.0]
    parts = _parts(sink, limiter=RateLimiter(1, 2, clock=lambda: now[0]))
    app_requests = []
    body = json.dumps(cloud_event("e", shop=SHOP))
    for _ in range(3):
        app_requests.append(
            request(sink, "POST", "/v1/events", parts=parts, headers=STRUCTURED, content=body)
        )
    assert [r.status_code for r in app_requests] == [202, 202, 429]
    assert app_requests[2].headers["retry-after"] == "1"
    now[0] += 1.0
    assert request(sink, "POST", "/v1/events", parts=parts, headers=STRUCTURED,
                   content=body).status_code == 202  # fmt: skip


def test_progress_is_scoped_to_the_tokens_shop() -> None:
    sink = RecordingSink()
    ok = request(sink, "GET", f"/v1/shops/{SHOP}/progress", headers=AUTH)
    assert ok.status_code == 200 and ok.json()["shops"] == [{"shop": SHOP}]
    assert request(sink, "GET", "/v1/shops/another-shop/progress", headers=AUTH).status_code == 403
    assert request(sink, "GET", f"/v1/shops/{SHOP}/progress").status_code == 401


def test_metrics_count_requests_by_route_and_status() -> None:
    sink = RecordingSink()
    parts = _parts(sink)
    request(sink, "POST", "/v1/events", parts=parts, headers=STRUCTURED,
            content=json.dumps(cloud_event("e", shop=SHOP)))  # fmt: skip
    request(sink, "POST", "/v1/events", parts=parts, headers={}, content=b"{}")
    text = request(sink, "GET", "/metrics", parts=parts).text
    assert 'okrflow_intake_requests_total{route="/v1/events",status="202"} 1.0' in text
    assert 'okrflow_intake_requests_total{route="/v1/events",status="401"} 1.0' in text
    assert 'okrflow_intake_events_produced_total{source="events"} 1.0' in text
    assert "okrflow_intake_request_seconds_bucket" in text


SECRETS = {(SHOP, "shopify"): "shpss_test", (SHOP, "stripe"): "whsec_test"}


def _webhook_parts(sink: RecordingSink, now: float = 1_767_225_600.0) -> IntakeParts:
    return _parts(
        sink, webhook_secret=lambda shop, platform: SECRETS.get((shop, platform)),
        clock=lambda: now,
    )  # fmt: skip


def test_a_signed_shopify_order_is_produced_once_per_delivery_id() -> None:
    sink = RecordingSink()
    body = fixture("shopify", "orders-create")
    headers = shopify_request(body, "orders/create", "wh-1", "shpss_test")
    parts = _webhook_parts(sink)
    for _ in range(2):  # Shopify retries with the same delivery id
        response = request(sink, "POST", f"/v1/webhooks/shopify/{SHOP}", parts=parts,
                           headers=headers, content=body)  # fmt: skip
        assert (response.status_code, response.json()) == (202, {"accepted": 1})
    first, second = (json.loads(v) for _, v in sink.sent)
    assert first == second and first["type"] == "order.placed" and first["shop"] == SHOP


def test_a_signed_stripe_checkout_within_tolerance_is_produced() -> None:
    sink = RecordingSink()
    body = fixture("stripe", "checkout-session-completed")
    now = 1_767_225_600
    headers = stripe_headers(body, "whsec_test", now - 299)
    response = request(sink, "POST", f"/v1/webhooks/stripe/{SHOP}",
                       parts=_webhook_parts(sink, now), headers=headers, content=body)  # fmt: skip
    assert response.status_code == 202, response.text
    assert json.loads(sink.sent[0][1])["type"] == "order.placed"


@pytest.mark.parametrize(
    ("path", "platform", "mutate", "status"),
    [
        (f"/v1/webhooks/shopify/{SHOP}", "shopify", "flip", 401),
        (f"/v1/webhooks/shopify/{SHOP}", "shopify", "wrong_secret", 401),
        (f"/v1/webhooks/stripe/{SHOP}", "stripe", "expired", 401),
        ("/v1/webhooks/shopify/no-secret-shop", "shopify", "", 401),
        (f"/v1/webhooks/square/{SHOP}", "shopify", "", 404),
        ("/v1/webhooks/shopify/Bad_Shop", "shopify", "", 404),
    ],
)
def test_webhook_refusals_produce_nothing(
    path: str, platform: str, mutate: str, status: int
) -> None:
    sink = RecordingSink()
    now = 1_767_225_600
    secret = "nope" if mutate == "wrong_secret" else SECRETS[SHOP, platform]
    if platform == "shopify":
        body = fixture("shopify", "orders-create")
        headers = shopify_request(body, "orders/create", "wh-2", secret)
    else:
        body = fixture("stripe", "checkout-session-completed")
        headers = stripe_headers(body, secret, now - 301 if mutate == "expired" else now)
    if mutate == "flip":
        body = body.replace(b"1", b"2", 1)
    response = request(sink, "POST", path, parts=_webhook_parts(sink, now), headers=headers,
                       content=body)  # fmt: skip
    assert response.status_code == status, response.text
    assert sink.sent == []


def test_an_unmapped_webhook_is_accepted_ignored_and_counted() -> None:
    sink = RecordingSink()
    parts = _webhook_parts(sink)
    body = fixture("shopify", "products-update")
    headers = shopify_request(body, "products/update", "wh-3", "shpss_test")
    response = request(sink, "POST", f"/v1/webhooks/shopify/{SHOP}", parts=parts,
                       headers=headers, content=body)  # fmt: skip
    assert response.status_code == 202 and response.json()["accepted"] == 0
    assert sink.sent == []
    text = request(sink, "GET", "/metrics", parts=parts).text
    assert 'okrflow_intake_webhooks_ignored_total{platform="shopify"} 1.0' in text


# Numbers okrflow cannot count exactly: refused here (422, bad_number), never produced to be
# dead-lettered by the worker.

INEXACT = ["9007199254740993", "1e300", "1.7976931348623157e308", "1e400", "-1e20"]


def _structured_order(total: str) -> bytes:
    event = cloud_event("n-1", shop=SHOP, event_type="order.placed")
    return json.dumps(event).replace('"total": 42.5', f'"total": {total}').encode()


@pytest.mark.parametrize("total", INEXACT)
def test_an_inexact_number_is_refused_in_every_mode(total: str) -> None:
    sink = RecordingSink()
    structured = _structured_order(total)
    response = request(sink, "POST", "/v1/events", headers=STRUCTURED, content=structured)
    assert response.status_code == 422, response.text
    [problem] = response.json()["problems"]
    assert problem["reason"] == "bad_number"
    # msgspec stops at 1e400 itself and names its place in an object only as `[...]`.
    assert problem["pointer"] == ("/data/..." if total == "1e400" else "/data/total")
    batch = b"[" + json.dumps(cloud_event("ok", shop=SHOP)).encode() + b"," + structured + b"]"
    response = request(sink, "POST", "/v1/events", headers=BATCH, content=batch)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0]["index"] == 1
    binary = {
        **AUTH, "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "b-1",
        "ce-source": "/s", "ce-type": "shop.sale", "ce-time": "2026-02-10T10:00:00Z",
        "ce-shop": SHOP,
    }  # fmt: skip
    refund = b'{"lines": [{"amount": ' + total.encode() + b"}]}"
    response = request(sink, "POST", "/v1/events", headers=binary, content=refund)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0]["reason"] == "bad_number"
    assert sink.sent == []


@pytest.mark.parametrize("total_price", ["1e300", "9007199254740993", 1e300])
def test_a_shopify_total_okrflow_cannot_count_exactly_is_refused(total_price: Any) -> None:
    sink = RecordingSink()
    order = json.loads(fixture("shopify", "orders-create"))
    order["total_price"] = total_price
    body = json.dumps(order).encode()
    headers = shopify_request(body, "orders/create", "wh-9", "shpss_test")
    response = request(sink, "POST", f"/v1/webhooks/shopify/{SHOP}",
                       parts=_webhook_parts(sink), headers=headers, content=body)  # fmt: skip
    assert response.status_code == 422, response.text
    assert "total_price" in response.json()["error"]
    assert sink.sent == []


def test_a_stripe_amount_of_10_to_the_20_is_refused() -> None:
    sink = RecordingSink()
    event = json.loads(fixture("stripe", "checkout-session-completed"))
    event["data"]["object"]["amount_total"] = 10**20
    body = json.dumps(event).encode()
    now = 1_767_225_600
    response = request(sink, "POST", f"/v1/webhooks/stripe/{SHOP}",
                       parts=_webhook_parts(sink, now), headers=stripe_headers(body, "whsec_test", now),
                       content=body)  # fmt: skip
    assert response.status_code == 422, response.text
    assert sink.sent == []


def test_an_unpaid_stripe_checkout_is_accepted_and_produces_nothing() -> None:
    sink = RecordingSink()
    body = fixture("stripe", "checkout-session-completed-unpaid")
    now = 1_767_225_600
    response = request(sink, "POST", f"/v1/webhooks/stripe/{SHOP}",
                       parts=_webhook_parts(sink, now), headers=stripe_headers(body, "whsec_test", now),
                       content=body)  # fmt: skip
    assert (response.status_code, response.json()["accepted"]) == (202, 0)
    assert sink.sent == []


# Canonical events: what is produced is okrflow's encoding, never the client's bytes.


def test_a_structured_event_with_a_key_twice_is_produced_with_the_last_one_only() -> None:
    sink = RecordingSink()
    event = json.dumps(cloud_event("d-1", shop=SHOP))
    twice = event.replace(
        '"shop": "salone-bella"', '"shop": "another-shop", "shop": "salone-bella"'
    )
    assert twice.count('"shop"') == 2
    response = request(sink, "POST", "/v1/events", headers=STRUCTURED, content=twice)
    assert response.status_code == 202, response.text
    [(key, value)] = sink.sent
    assert key == SHOP.encode()
    assert value.count(b'"shop"') == 1 and json.loads(value)["shop"] == SHOP
    # The other way round, the event is another shop's: forbidden, nothing produced.
    other = event.replace(
        '"shop": "salone-bella"', '"shop": "salone-bella", "shop": "another-shop"'
    )
    response = request(sink, "POST", "/v1/events", headers=STRUCTURED, content=other)
    assert response.status_code == 403
    assert len(sink.sent) == 1


def test_duplicate_keys_in_data_are_produced_once_in_every_mode() -> None:
    sink = RecordingSink()
    data = '{"customer_id": "c-1", "customer_id": "c-2"}'
    event = json.dumps(cloud_event("d-2", shop=SHOP)).replace('{"customer_id": "c-1"}', data)
    assert request(sink, "POST", "/v1/events", headers=STRUCTURED, content=event).status_code == 202
    assert (
        request(sink, "POST", "/v1/events", headers=BATCH, content=f"[{event}]").status_code == 202
    )
    binary = {
        **AUTH, "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "d-3",
        "ce-source": "/s", "ce-type": "customer.created", "ce-time": "2026-02-10T10:00:00Z",
        "ce-shop": SHOP,
    }  # fmt: skip
    assert request(sink, "POST", "/v1/events", headers=binary, content=data).status_code == 202
    assert [json.loads(v)["data"] for _, v in sink.sent] == [{"customer_id": "c-2"}] * 3
    assert all(v.count(b"customer_id") == 1 for _, v in sink.sent)
