"""Event contracts: every example is valid or rejected as labelled, by the JSON Schemas and by
the hot-path decoder alike; no schema or example is an orphan."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from okrflow.events import CloudEvent, InvalidEvent, decode_event
from okrflow.events.types import BUILT_IN
from tests.contract.event_oracle import (
    EVENT_SCHEMAS,
    structured_from_binary,
    verdict,
    verdict_of_bytes,
)

EXAMPLES = EVENT_SCHEMAS.parent / "examples" / "events"
VALID = sorted((EXAMPLES / "valid").glob("*.json"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))
REASONS = {
    "not_json",
    "not_cloudevent",
    "bad_shop",
    "bad_time",
    "too_deep",
    "bad_number",
    "invalid_data",
}


def _decode_example(path: Path) -> tuple[CloudEvent | InvalidEvent, str | None]:
    """(the decoder's result, the JSON Schemas' verdict) for one example file."""
    raw = path.read_bytes()
    if path.name.endswith(".binary.json"):
        example = json.loads(raw)
        headers = [(k, v.encode()) for k, v in example["headers"].items()]
        value = json.dumps(example["data"]).encode()
        return decode_event(value, headers=headers), verdict(
            structured_from_binary(example["headers"], example["data"])
        )
    return decode_event(raw), verdict_of_bytes(raw)


def test_every_schema_is_valid_and_every_built_in_type_has_one() -> None:
    schemas = sorted(EVENT_SCHEMAS.glob("*.schema.json"))
    for path in schemas:
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
    names = {p.name.removesuffix(".v1.schema.json") for p in schemas}
    assert names == {"cloudevent", *BUILT_IN}, (
        "a schema without a decoder, or a decoder without a schema"
    )


def test_every_built_in_type_has_a_valid_and_an_invalid_example() -> None:
    def types_of(paths: list[Path]) -> set[str]:
        found = set()
        for path in paths:
            try:
                example = json.loads(path.read_bytes())
            except (ValueError, RecursionError):
                continue
            if isinstance(example, dict):
                found.add(example.get("type") or example.get("headers", {}).get("ce_type"))
        return found

    assert set(BUILT_IN) <= types_of(VALID)
    assert {
        "order.placed",
        "campaign.launched",
        "social.followers.changed",
        "service.launched",
    } <= types_of(INVALID)


def test_every_invalid_example_is_labelled_with_a_known_reason() -> None:
    assert INVALID
    for path in INVALID:
        assert path.name.split("--")[0] in REASONS, path.name


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_is_valid_for_both(path: Path) -> None:
    decoded, oracle = _decode_example(path)
    assert oracle is None
    assert isinstance(decoded, CloudEvent), decoded


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_is_rejected_by_both_with_its_reason(path: Path) -> None:
    expected = path.name.split("--")[0]
    decoded, oracle = _decode_example(path)
    assert oracle == expected
    assert isinstance(decoded, InvalidEvent), decoded
    assert decoded.reason == expected
    assert decoded.error


def test_size_limit() -> None:
    example = (EXAMPLES / "valid" / "order-placed.json").read_bytes()
    assert isinstance(decode_event(example, max_bytes=len(example)), CloudEvent)
    too_large = decode_event(example, max_bytes=len(example) - 1)
    assert isinstance(too_large, InvalidEvent)
    assert too_large.reason == "too_large"
