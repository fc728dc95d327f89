import json
from datetime import UTC, datetime

import pytest

from okrflow.events import CloudEvent, InvalidEvent, decode_event
from tests.factories import cloud_event, encoded


def test_valid_structured_event_decodes() -> None:
    event = decode_event(encoded(event_id="abc", data={"customer_id": "c-9"}))
    assert isinstance(event, CloudEvent)
    assert event.id == "abc"
    assert event.shop == "salone-bella"
    assert event.type == "customer.created"
    assert event.time == datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    assert event.data == {"customer_id": "c-9"}


def test_unknown_extension_attributes_are_ignored() -> None:
    assert isinstance(decode_event(encoded(traceparent="00-abc")), CloudEvent)


@pytest.mark.parametrize(
    ("value", "reason", "fragment"),
    [
        (None, "empty", "no value"),
        (b"not json", "not_json", ""),
        (b"[1, 2]", "not_cloudevent", "object"),
        (
            json.dumps({**cloud_event(), "specversion": "0.3"}).encode(),
            "not_cloudevent",
            "specversion",
        ),
        (json.dumps({**cloud_event(), "id": ""}).encode(), "not_cloudevent", "$.id"),
        (json.dumps({**cloud_event(), "shop": "Bad Shop"}).encode(), "bad_shop", "$.shop"),
        (json.dumps({**cloud_event(), "shop": "-x"}).encode(), "bad_shop", "$.shop"),
        (json.dumps({**cloud_event(), "time": "yesterday"}).encode(), "not_cloudevent", "$.time"),
        (
            json.dumps({**cloud_event(), "time": "2026-01-01T10:00:00"}).encode(),
            "not_cloudevent",
            "offset",
        ),
        (json.dumps({**cloud_event(), "data": [1]}).encode(), "not_cloudevent", "$.data"),
        (
            json.dumps({k: v for k, v in cloud_event().items() if k != "time"}).encode(),
            "not_cloudevent",
            "time",
        ),
        (
            json.dumps({k: v for k, v in cloud_event().items() if k != "source"}).encode(),
            "not_cloudevent",
            "source",
        ),
    ],
)
def test_invalid_messages_carry_a_reason(value: bytes | None, reason: str, fragment: str) -> None:
    result = decode_event(value)
    assert isinstance(result, InvalidEvent)
    assert result.reason == reason
    assert fragment in result.error


def test_size_limit() -> None:
    big = encoded(data={"customer_id": "x" * 5000})
    result = decode_event(big, max_bytes=1024)
    assert isinstance(result, InvalidEvent)
    assert result.reason == "too_large"
    assert isinstance(decode_event(big, max_bytes=10_000), CloudEvent)
