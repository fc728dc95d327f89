"""The decoder on random bytes and near-valid CloudEvents: never an unhandled exception,
every rejection with a known reason and an explanation."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from okrflow.events import CloudEvent, InvalidEvent, decode_event
from tests.factories import SAMPLE_DATA, cloud_event

REASONS = {
    "empty", "too_large", "too_deep", "not_json", "not_cloudevent", "bad_shop", "bad_time",
    "bad_number", "invalid_data",
}  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


def _check(result: CloudEvent | InvalidEvent) -> None:
    if isinstance(result, InvalidEvent):
        assert result.reason in REASONS
        assert result.error


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes(value: bytes) -> None:
    _check(decode_event(value, max_bytes=300))


@settings(max_examples=500)
@given(
    event_type=st.sampled_from([*SAMPLE_DATA, "shop.custom"]),
    field=st.sampled_from(
        ["specversion", "id", "source", "type", "time", "shop", "data", "subject"]
    ),
    replacement=json_values,
    drop=st.booleans(),
    data_field=st.text(max_size=12),
    data_value=json_values,
)
def test_near_valid_events(
    event_type: str, field: str, replacement: Any, drop: bool, data_field: str, data_value: Any
) -> None:
    event = cloud_event(event_type=event_type)
    event["data"] = {**event["data"], data_field: data_value}
    if drop:
        event.pop(field, None)
    else:
        event[field] = replacement
    _check(decode_event(json.dumps(event).encode()))


@settings(max_examples=200)
@given(
    headers=st.lists(
        st.tuples(st.text(max_size=16), st.binary(max_size=30) | st.none()), max_size=8
    ),
    value=st.binary(max_size=60),
)
def test_binary_mode_headers(headers: list[tuple[str, bytes | None]], value: bytes) -> None:
    _check(decode_event(value, headers=[("ce_specversion", b"1.0"), *headers]))
