"""Numbers okrflow cannot count exactly are refused when an event is decoded (bad_number), in
structured and binary mode, at any depth of `data`, whatever the plans read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okrflow.events import CloudEvent, InvalidEvent, decode_event
from okrflow.events.numbers import MAX_ABS_VALUE, has_inexact_number, inexact_number_error
from tests.factories import cloud_event

BINARY = [
    ("ce_specversion", b"1.0"), ("ce_id", b"b-1"), ("ce_source", b"/s"),
    ("ce_type", b"shop.sale"), ("ce_time", b"2026-02-10T10:00:00Z"), ("ce_shop", b"rome"),
]  # fmt: skip


def _structured(data_json: str, event_type: str = "shop.sale") -> bytes:
    event = cloud_event(event_type=event_type, data={"x": "SLOT"})
    return json.dumps(event).replace('{"x": "SLOT"}', data_json).encode()


def _reason(value: bytes, headers: Any = None) -> str | None:
    decoded = decode_event(value, headers=headers)
    return decoded.reason if isinstance(decoded, InvalidEvent) else None


REFUSED = [
    '{"total": 9007199254740993}',
    '{"total": -9007199254740993}',
    '{"total": 1e300}',
    '{"total": 1.7976931348623157e308}',
    '{"amount": 1e20}',
    '{"total": 1e400}',  # beyond a float: msgspec's own "Number out of range"
    '{"total": -1e400}',
    '{"total": ' + "9" * 400 + "}",
    '{"items": [{"sku": "a", "price": 1e20}]}',
    '{"a": {"b": [[1, 2, {"c": 18446744073709551616}]]}}',
]


@pytest.mark.parametrize("data", REFUSED)
def test_an_inexact_number_anywhere_in_data_is_bad_number(data: str) -> None:
    assert _reason(_structured(data)) == "bad_number"
    assert _reason(data.encode(), BINARY) == "bad_number"


@pytest.mark.parametrize(
    "data",
    [
        '{"total": 9007199254740992}',
        '{"total": -9007199254740992}',
        '{"total": 9007199254740992.0}',
        '{"total": 1e-300, "flag": true, "none": null, "s": "9007199254740993"}',
        '{"items": [{"price": 49.9}], "deep": [[[[1]]]]}',
    ],
)
def test_numbers_within_2_to_the_53_pass(data: str) -> None:
    assert _reason(_structured(data)) is None
    assert _reason(data.encode(), BINARY) is None


def test_built_in_types_get_bad_number_before_their_schema() -> None:
    order = '{"order_id": "o", "customer_id": "c", "total": 1e300, "currency": "EUR"}'
    assert _reason(_structured(order, "order.placed")) == "bad_number"
    negative = order.replace("1e300", "-1e300")  # also below 0: the number is found first
    assert _reason(_structured(negative, "order.placed")) == "bad_number"


def test_the_error_names_the_number_and_where_it_is() -> None:
    decoded = decode_event(_structured('{"items": [{"sku": "a"}, {"price": 1e20}]}'))
    assert isinstance(decoded, InvalidEvent)
    assert decoded.error == (
        "1e+20 is beyond +/-2^53 (9,007,199,254,740,992), the range okrflow counts exactly"
        " - at `$.data.items[1].price`"
    )
    long = decode_event(_structured('{"n": ' + "9" * 400 + "}"))
    assert isinstance(long, InvalidEvent) and "a 400-digit number" in long.error
    odd_key = inexact_number_error({"a.b": 2**60})
    assert odd_key.endswith("- at `$.data[...]`")
    overflow = decode_event(_structured('{"n": 1e400}'))
    assert isinstance(overflow, InvalidEvent) and overflow.error.endswith("- at `$.data[...]`")


def test_a_deep_value_is_walked_without_recursion() -> None:
    deep: Any = 2**60
    for _ in range(5000):
        deep = [deep]
    assert has_inexact_number({"d": deep})
    assert "[0][0]" in inexact_number_error({"d": deep})


json_numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | json_numbers | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)


def _numbers(value: Any) -> list[int | float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    return []


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=4))
def test_the_walk_agrees_with_a_plain_recursion(data: dict[str, Any]) -> None:
    expected = any(abs(n) > MAX_ABS_VALUE for n in _numbers(data))
    assert has_inexact_number(data) is expected
    decoded = decode_event(json.dumps(cloud_event(event_type="shop.sale", data=data)).encode())
    assert isinstance(decoded, InvalidEvent if expected else CloudEvent)
    if expected:
        assert isinstance(decoded, InvalidEvent) and decoded.reason == "bad_number"
