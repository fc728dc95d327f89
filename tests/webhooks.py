"""Signing webhook requests the way Shopify and Stripe do, for tests (written from the
platforms' documentation, independently of okrflow.intake.webhooks, so that a test checks
the verifier against a second implementation).

Header names are lower-case, as `WebhookPlatform.verify` takes them; HTTP clients send them
as they are (header names are case-insensitive).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "webhooks"


def fixture(platform: str, name: str) -> bytes:
    """The raw body of a sample webhook: tests/fixtures/webhooks/<platform>/<name>.json."""
    return (FIXTURES / platform / f"{name}.json").read_bytes()


def shopify_request(body: bytes, topic: str, webhook_id: str, secret: str) -> dict[str, str]:
    """The headers Shopify sends with `body`: base64(HMAC-SHA256(secret, body)), the topic
    and the delivery's id (the same on Shopify's retries)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "x-shopify-hmac-sha256": base64.b64encode(digest).decode(),
        "x-shopify-topic": topic,
        "x-shopify-webhook-id": webhook_id,
        "x-shopify-api-version": "2025-01",
    }


def stripe_signature(body: bytes, secret: str, t: int) -> str:
    """Stripe's `v1` signature: hex(HMAC-SHA256(secret, "<t>.<body>"))."""
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def stripe_headers(body: bytes, secret: str, t: int) -> dict[str, str]:
    """The headers Stripe sends with `body` signed at Unix time `t`."""
    return {
        "content-type": "application/json; charset=utf-8",
        "stripe-signature": f"t={t},v1={stripe_signature(body, secret, t)}",
    }
