"""Reading okrs.yaml: YAML 1.2 scalars, located refusals, and limits that stop reading early."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from okrflow.plans import yamlsource
from okrflow.plans.apply import parse_files
from okrflow.plans.parse import MAX_FILE_BYTES, PlanError, parse_plan, read_plan_file
from okrflow.plans.yamlsource import (
    MAX_DEPTH,
    MAX_VALUES,
    YamlSyntaxError,
    line_of,
    load_with_lines,
)
from tests.unit.plans.bad_plans import BAD, BILLION_LAUGHS, NO_ANCHORS, VALID, Bad

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples" / "okrs"


@pytest.mark.parametrize("bad", BAD, ids=lambda b: b.name)
def test_a_bad_file_is_refused_with_one_located_problem(tmp_path: Path, bad: Bad) -> None:
    path = tmp_path / f"{bad.name}.yaml"
    path.write_bytes(bad.content)
    with pytest.raises(PlanError) as info:
        parse_files([path])
    assert [str(p) for p in info.value.problems] == [bad.problem(str(path))]


def test_the_valid_base_of_the_bad_files_parses() -> None:
    assert parse_plan(VALID, "okrs.yaml").plan.objectives[0].key == "o0"


def test_text_over_the_size_limit_is_refused_before_parsing() -> None:
    text = VALID + "#" * MAX_FILE_BYTES
    with pytest.raises(PlanError) as info:
        parse_plan(text, "big.yaml")
    assert [str(p) for p in info.value.problems] == [
        f"big.yaml:1: larger than {MAX_FILE_BYTES / 2**20:g} MiB, the limit of a plan file"
    ]


def test_an_endless_file_is_refused_after_reading_just_past_the_limit() -> None:
    with pytest.raises(PlanError) as info:
        read_plan_file("/dev/zero")
    assert "larger than" in str(info.value)


def test_billion_laughs_stops_at_its_first_anchor_before_any_expansion() -> None:
    seen: list[tuple[str | int, ...]] = []

    def spy(path: tuple[str | int, ...], value: Any) -> None:
        seen.append(path)

    with pytest.raises(YamlSyntaxError) as info:
        load_with_lines(BILLION_LAUGHS, spy)
    assert (info.value.line, info.value.path) == (2, ("a",))
    assert str(info.value) == f"anchor &a: {NO_ANCHORS}"
    assert seen == [(), ("shop",)]  # nothing of `a` onwards was built


@pytest.mark.parametrize(
    ("text", "line", "path", "message"),
    [
        ("a: &x 1\n", 1, ("a",), f"anchor &x: {NO_ANCHORS}"),
        ("a: *x\n", 1, ("a",), f"alias *x: {NO_ANCHORS}"),
        ("&x a: 1\n", 1, ("a",), f"anchor &x: {NO_ANCHORS}"),
        ("a: 1\n*x : 2\n", 2, (), f"alias *x: {NO_ANCHORS}"),
        ("- &x [*x]\n", 1, (0,), f"anchor &x: {NO_ANCHORS}"),
        ("a:\n  b: 1\n  b: 2\n", 3, ("a", "b"), "duplicate key 'b' (first at line 2)"),
        ("? [a]\n: 1\n", 1, (), "a key must be text, not a list"),
        ("a: !!int x\n", 1, ("a",), "'x' is not a valid !!int"),
        ("a: !!bool yes\n", 1, ("a",), "'yes' is not a valid !!bool"),
        ("a: !!seq {b: 1}\n", 1, ("a",), "tag !!seq does not fit this value"),
        ("!!int 1: a\n", 1, (), "a key is text: tag !!int"),
    ],
)
def test_refusals_are_located(text: str, line: int, path: tuple[str, ...], message: str) -> None:
    with pytest.raises(YamlSyntaxError) as info:
        load_with_lines(text)
    assert (info.value.line, info.value.path, str(info.value)) == (line, path, message)


def test_bad_syntax_and_bad_characters_are_located_without_a_path() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        load_with_lines("a: 1\nb: [\n")
    assert (info.value.line, info.value.path) == (3, ())
    with pytest.raises(PlanError) as plan_info:
        parse_plan("shop: s\ntimezone: \x07\n", "okrs.yaml")
    assert [str(p) for p in plan_info.value.problems] == [
        "okrs.yaml:2: not valid YAML: unacceptable character #x0007: special characters are not allowed"
    ]


def test_nesting_is_capped() -> None:
    text = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(YamlSyntaxError, match=f"nested more than {MAX_DEPTH} levels"):
        load_with_lines(text)
    load_with_lines("[" * MAX_DEPTH + "]" * MAX_DEPTH)


def test_the_number_of_values_is_capped_and_reading_stops_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert MAX_VALUES >= 20_000  # a 1 MiB plan holds about that many
    monkeypatch.setattr(yamlsource, "MAX_VALUES", 100)
    seen = 0

    def count(path: tuple[str | int, ...], value: Any) -> None:
        nonlocal seen
        seen += 1

    text = "x: [" + "1, " * 1000 + "1]\n"
    with pytest.raises(YamlSyntaxError, match="more than 100 values") as info:
        load_with_lines(text, count)
    assert info.value.path == ("x", 98)  # the document, x, then x[0] to x[97] are 100
    assert seen == 100


def test_a_check_refuses_a_value_and_nothing_after_it_is_read() -> None:
    seen: list[tuple[str | int, ...]] = []

    def stop_at_third(path: tuple[str | int, ...], value: Any) -> str | None:
        seen.append(path)
        return "too many" if path == ("items", 2) else None

    with pytest.raises(YamlSyntaxError) as info:
        load_with_lines("items:\n  - a\n  - b\n  - c\n  - d\nmore: 1\n", stop_at_third)
    assert (info.value.line, info.value.path, str(info.value)) == (4, ("items", 2), "too many")
    assert seen[-1] == ("items", 2)


def test_scalars_follow_yaml_1_2_and_dates_stay_text() -> None:
    data, _ = load_with_lines(
        "on: [mon, tue]\n"
        "yes_no: [yes, no, On, off, y]\n"
        "bools: [true, False, TRUE]\n"
        "date: 2026-01-01\n"
        "stamp: 2026-01-01T10:00:00Z\n"
        "ints: [12, -3, 012, 0o17, 0x1f]\n"
        "floats: [1.5, 1e3, .inf, -.inf]\n"
        "nulls: [~, null, NULL]\n"
        "empty:\n"
        "text: ['12', \"true\", ! 12, !!str 2026-01-01, '1e3']\n"
        "tagged: [!!float 3, !!int '7', !!null '', !!bool 'true']\n"
        "1: number key\n"
    )
    assert data == {
        "on": ["mon", "tue"],
        "yes_no": ["yes", "no", "On", "off", "y"],
        "bools": [True, False, True],
        "date": "2026-01-01",
        "stamp": "2026-01-01T10:00:00Z",
        "ints": [12, -3, 12, 15, 31],
        "floats": [1.5, 1000.0, float("inf"), float("-inf")],
        "nulls": [None, None, None],
        "empty": None,
        "text": ["12", "true", "12", "2026-01-01", "1e3"],
        "tagged": [3.0, 7, None, True],
        "1": "number key",
    }
    assert isinstance(data["tagged"][0], float)


def test_a_yaml_1_1_directive_does_not_bring_back_yes_and_on() -> None:
    data, _ = load_with_lines("%YAML 1.1\n---\non: yes\n")
    assert data == {"on": "yes"}


def test_every_path_of_an_example_has_its_line() -> None:
    text = (EXAMPLES / "tiktok.yaml").read_text()
    data, lines = load_with_lines(text)

    def paths(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
        out = [path]
        if isinstance(value, dict):
            for key, item in value.items():
                out += paths(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                out += paths(item, (*path, index))
        return out

    assert set(paths(data)) == set(lines)
    text_lines = text.splitlines()
    assert (
        text_lines[lines[("objectives", 0, "key_results", 1, "cadence")] - 1]
        .lstrip()
        .startswith("cadence:")
    )
    assert line_of(lines, ("objectives", 0, "nowhere", 3)) == lines[("objectives", 0)]


def test_empty_documents_are_none() -> None:
    assert load_with_lines("") == (None, {})
    assert load_with_lines("# only a comment\n") == (None, {})
