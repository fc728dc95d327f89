"""The OKR file format: valid examples parse, invalid ones fail with exactly their located errors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from okrflow.plans.parse import PlanError, parse_plan
from okrflow.plans.yamlsource import load_with_lines

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
EXAMPLES = SCHEMAS / "examples" / "okrs"
VALID = sorted(EXAMPLES.glob("*.yaml"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))


def test_there_are_examples_of_both_kinds() -> None:
    assert {p.name for p in VALID} >= {"salon.yaml", "tiktok.yaml"}
    assert len(INVALID) >= 5


def test_the_schema_is_a_valid_json_schema() -> None:
    schema = json.loads((SCHEMAS / "okr-definitions.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_parses_and_validates(path: Path) -> None:
    parsed = parse_plan(path.read_text(), path.name)
    assert parsed.plan.objectives
    schema = json.loads((SCHEMAS / "okr-definitions.schema.json").read_text())
    data, _ = load_with_lines(path.read_text())
    jsonschema.validate(data, schema)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_is_rejected_with_its_expected_messages(path: Path) -> None:
    text = path.read_text()
    expected = [
        line.removeprefix("# expect: ")
        for line in text.splitlines()
        if line.startswith("# expect: ")
    ]
    assert expected, f"{path.name} states no `# expect:` line"
    with pytest.raises(PlanError) as info:
        parse_plan(text, path.name)
    assert [str(p) for p in info.value.problems] == expected
