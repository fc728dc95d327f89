"""The JSON Schemas' verdict on a message: the reference the fast decoder must agree with."""

from __future__ import annotations

import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

EVENT_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"


@cache
def envelope_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        json.loads((EVENT_SCHEMAS / "cloudevent.v1.schema.json").read_text())
    )


@cache
def data_validators() -> dict[str, jsonschema.Draft202012Validator]:
    validators = {}
    for path in EVENT_SCHEMAS.glob("*.v1.schema.json"):
        event_type = path.name.removesuffix(".v1.schema.json")
        if event_type != "cloudevent":
            validators[event_type] = jsonschema.Draft202012Validator(json.loads(path.read_text()))
    return validators


RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _is_number_error(error: jsonschema.ValidationError) -> bool:
    """A number in `data` beyond +/-2^53 (the schema's `exactNumbers`)."""
    path = list(error.absolute_path)
    return bool(path) and path[0] == "data" and error.validator in ("minimum", "maximum")


def verdict(event: Any) -> str | None:
    """None for a valid event (already parsed JSON), else the reason code."""
    errors = list(envelope_validator().iter_errors(event))
    numbers = [e for e in errors if _is_number_error(e)]
    # A number too large for a float (1e400, read as inf) stops the decoder at once, before
    # it looks at any other attribute; a merely inexact one is found after the envelope.
    if any(not math.isfinite(e.instance) for e in numbers):
        return "bad_number"
    errors = [e for e in errors if not _is_number_error(e)]
    if not errors and numbers:
        return "bad_number"
    if errors:
        if all(list(e.absolute_path) == ["time"] for e in errors) and RFC3339.match(event["time"]):
            return "bad_time"  # RFC 3339, but outside the years okrflow accepts
        about_shop = all(
            list(e.absolute_path) == ["shop"]
            or (e.validator == "required" and "'shop'" in e.message)
            for e in errors
        )
        return "bad_shop" if about_shop else "not_cloudevent"
    validator = data_validators().get(event["type"])
    if validator is not None and not validator.is_valid(event["data"]):
        return "invalid_data"
    return None


def verdict_of_bytes(value: bytes) -> str | None:
    try:
        event = json.loads(value)
    except ValueError:
        return "not_json"
    except RecursionError:
        return "too_deep"
    return verdict(event)


def structured_from_binary(headers: dict[str, str], data: Any) -> dict[str, Any]:
    event = {k[3:]: v for k, v in headers.items() if k.startswith("ce_")}
    event["data"] = data
    return event
