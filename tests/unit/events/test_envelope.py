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


@pytest.mark.parametrize(
    ("value", "reason", "fragment"),
    [
        (encoded(time="9999-12-31T23:59:59-10:00"), "bad_time", "$.time"),
        (encoded(time="0001-01-01T00:00:00+10:00"), "bad_time", "$.time"),
        (encoded(time="1969-12-31T23:59:59Z"), "bad_time", "$.time"),
        (encoded(event_id="ord\x001"), "not_cloudevent", "$.id"),
        (encoded(event_type="order.placed\x00"), "not_cloudevent", "$.type"),
        (encoded(source="/shops/x\x1b[31m"), "not_cloudevent", "$.source"),
        (encoded(subject="a\x85b"), "not_cloudevent", "$.subject"),
        (encoded(event_id="x" * 256), "not_cloudevent", "$.id"),
        (encoded(event_type="t" * 256), "not_cloudevent", "$.type"),
        (encoded(source="/" * 2049), "not_cloudevent", "$.source"),
        (encoded()[:-1] + b', "x": ' + b"[" * 2000 + b"]" * 2000 + b"}", "too_deep", "nested"),
    ],
)
def test_hostile_attributes_are_rejected_with_a_reason(
    value: bytes, reason: str, fragment: str
) -> None:
    result = decode_event(value)
    assert isinstance(result, InvalidEvent)
    assert (result.reason, fragment in result.error) == (reason, True), result


def test_deep_binary_mode_data_is_too_deep() -> None:
    result = decode_event(
        b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}", headers=[("ce_specversion", b"1.0")]
    )
    assert isinstance(result, InvalidEvent)
    assert result.reason == "too_deep"


def test_limits_accept_the_longest_allowed_values() -> None:
    result = decode_event(
        encoded(event_id="x" * 255, event_type="t" * 255, source="/" * 2048,
                time="2999-12-31T23:59:59Z")
    )  # fmt: skip
    assert isinstance(result, CloudEvent)
