"""distinct_text (the stored text of a count_distinct value) is json.dumps's, cut to 255."""

from __future__ import annotations

import json
import random

import pytest

from okrflow.counting.series import distinct_text

VALUES: list[str | int | float] = [
    "c-1", 'a"b', "a\\b", "é", "\x7f", "\x1f", "\u2028", "tab\t", " ", "", "x" * 300,
    "~!@#$%^&*()_+{}|:<>?/", 12, -5, 10**30, 1.5, 1e16, 2.0, -0.0,
]  # fmt: skip


@pytest.mark.parametrize("value", VALUES)
def test_a_value_is_stored_as_its_json(value: str | int | float) -> None:
    assert distinct_text(value) == json.dumps(value)[:255]


def test_random_short_strings_are_stored_as_their_json() -> None:
    rng = random.Random(7)
    for _ in range(20_000):  # bounded
        value = "".join(chr(rng.randrange(0, 0x250)) for _ in range(rng.randrange(0, 6)))
        assert distinct_text(value) == json.dumps(value)[:255], repr(value)
