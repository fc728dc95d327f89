"""Building CloudEvents for tests."""

from __future__ import annotations

import json
from typing import Any

SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "order.placed": {"order_id": "o-1", "customer_id": "c-1", "total": 42.5, "currency": "EUR"},
    "order.refunded": {"order_id": "o-1", "amount": 10, "currency": "EUR"},
    "customer.created": {"customer_id": "c-1"},
    "campaign.launched": {"campaign_id": "k-1", "channel": "instagram", "kind": "promo"},
    "social.post.published": {"platform": "tiktok", "post_id": "p-1"},
    "social.followers.changed": {"platform": "tiktok", "followers": 120},
    "partnership.signed": {"partner_id": "partner-1"},
    "influencer.contacted": {"influencer": "ana"},
    "service.launched": {"service": "scalp-care"},
}


def cloud_event(
    event_id: str = "e-1",
    *,
    shop: str = "salone-bella",
    event_type: str = "customer.created",
    time: str = "2026-02-10T10:00:00+01:00",
    data: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/shops/{shop}/pos",
        "type": event_type,
        "time": time,
        "shop": shop,
        "data": SAMPLE_DATA.get(event_type, {}) if data is None else data,
        **extra,
    }


def encoded(**kwargs: Any) -> bytes:
    return json.dumps(cloud_event(**kwargs)).encode()


def decode_batch_of(
    topic: str, messages: list[tuple[int, int, bytes | None]], max_bytes: int
) -> Any:
    """decode_batch over (partition, offset, value) tuples."""
    from okrflow.counting.decode import Message, decode_batch

    return decode_batch(topic, [Message(*m) for m in messages], max_bytes)


def clients_plan(shop: str) -> str:
    """An okrs.yaml with one key result counting `customer.created` (totals are kept only for
    shops with a plan)."""
    return f"""\
shop: {shop}
timezone: Europe/Rome
objectives:
  - key: growth
    title: Growth
    owner: marketing
    period: {{start: 2026-01-01, end: 2026-06-30}}
    key_results:
      - {{key: clients, metric: {{event: customer.created, aggregate: count}}, target: 100}}
"""
