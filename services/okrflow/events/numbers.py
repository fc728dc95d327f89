"""Numbers okrflow can count exactly: the check every event's `data` passes when decoded.

A 64-bit float holds every integer up to 2^53 and no longer all of them beyond; okrflow adds,
compares and stores values as such floats. So a number in `data` beyond +/-2^53 (an integer
like 9007199254740993, a float like 1e300) would be rounded, or would make a sum overflow, in
whichever key result reads it: the event is refused when it is decoded (reason `bad_number`),
by the worker and by the intake alike, whatever the plans read (docs/events.md).
"""

from __future__ import annotations

import re
from typing import Any

# The largest magnitude of a number in an event's data (exact in float64, and a sum of such
# values over any realistic number of events stays finite).
MAX_ABS_VALUE = 2**53
_LIMIT_TEXT = "+/-2^53 (9,007,199,254,740,992)"
# Keys that read plainly in a "$.data.<key>" path; others are shown as msgspec does, `[...]`.
_PLAIN_KEY = re.compile(r"[^`.\[\]]+")


# Any: `CloudEvent.data` as msgspec decodes it; the walk tests each value's exact type (its
# speed on the hot path), which typing as JSON would make it cast at every step
def has_inexact_number(data: dict[str, Any]) -> bool:
    """True if a number anywhere in `data` (nested objects and arrays included) lies beyond
    +/-2^53. Hot path (about 0.15 µs for a flat object of a few fields): text, the commonest
    value, is passed over with one test; only an object holding containers takes the walk."""
    limit = MAX_ABS_VALUE
    for value in data.values():
        kind = type(value)
        if kind is str:
            continue
        if kind is int or kind is float:
            if not -limit <= value <= limit:
                return True
        elif kind is dict or kind is list:
            return _walk_has_inexact_number(data)
    return False


def _walk_has_inexact_number(data: dict[str, Any]) -> bool:
    """has_inexact_number over nested values, without recursion (any depth msgspec decodes)."""
    limit = MAX_ABS_VALUE
    pending: list[Any] = []
    values: Any = data.values()
    while True:
        for value in values:
            kind = type(value)
            if kind is str:
                continue
            if kind is int or kind is float:
                if not -limit <= value <= limit:
                    return True
            elif kind is dict:
                pending.append(value.values())
            elif kind is list:
                pending.append(value)
        if not pending:
            return False
        values = pending.pop()


def inexact_number_error(data: dict[str, Any]) -> str:  # Any: as `has_inexact_number`'s
    """The error for the first number beyond +/-2^53 in `data` (depth first), with its path
    as msgspec writes one (`... - at `$.data.total``). Slow path: only for refused events."""
    stack: list[tuple[str, Any]] = [("$.data", data)]
    while stack:
        path, value = stack.pop()
        kind = type(value)
        if kind is int or kind is float:
            if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
                text = str(value)
                shown = text if len(text) <= 40 else f"a {len(text)}-digit number"
                return (
                    f"{shown} is beyond {_LIMIT_TEXT}, the range okrflow counts exactly"
                    f" - at `{path}`"
                )
        elif kind is dict:
            children = [
                (f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[...]", child)
                for key, child in value.items()
            ]
            stack.extend(reversed(children))
        elif kind is list:
            stack.extend(reversed([(f"{path}[{i}]", child) for i, child in enumerate(value)]))
    raise ValueError("no number beyond +/-2^53 in data")  # the caller checked first


def out_of_range_error(error: str) -> str:
    """msgspec's "Number out of range - at `$.data.x`" (a number too large for a float64,
    such as 1e400) in the same words as `inexact_number_error`."""
    location = error.partition(" - at ")[2]
    return f"a number beyond {_LIMIT_TEXT}, the range okrflow counts exactly" + (
        f" - at {location}" if location else ""
    )
