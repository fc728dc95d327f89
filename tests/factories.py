"""Building CloudEvents for tests."""

from __future__ import annotations

import json
from typing import Any


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
        "data": {"customer_id": "c-1"} if data is None else data,
        **extra,
    }


def encoded(**kwargs: Any) -> bytes:
    return json.dumps(cloud_event(**kwargs)).encode()
