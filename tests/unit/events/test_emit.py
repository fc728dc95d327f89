from okrflow.events.emit import MAX_DEPTH, EmitReport, nesting_depth, parse_lines


def test_parse_lines_reports_bad_lines_by_number_and_keeps_the_rest() -> None:
    report = EmitReport()
    lines = ['{"shop": "a", "id": "1"}\n', "not json\n", "\n", "[1]\n", '{"id": "2"}\n']
    parsed = list(parse_lines(lines, report))
    assert [(p.number, p.key) for p in parsed] == [(1, b"a"), (5, None)]
    assert report.problems[0].startswith("2: not JSON")
    assert report.problems[1] == "4: not a JSON object"
    assert len(report.problems) == 2


def _deep(depth: int) -> str:
    return '{"shop": "a", "data": {"x": ' + "[" * depth + "]" * depth + "}}"


def test_too_deeply_nested_lines_are_reported_not_raised() -> None:
    report = EmitReport()
    lines = [_deep(MAX_DEPTH - 3), _deep(2_000), _deep(100_000), '{"shop": "b"}']
    parsed = list(parse_lines(lines, report))
    assert [p.number for p in parsed] == [1, 4]
    assert report.problems == [
        f"2: JSON nested deeper than {MAX_DEPTH} levels",
        f"3: JSON nested deeper than {MAX_DEPTH} levels",
    ]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    brackets = '"' + "[{" * 1000 + '\\"[[["'
    assert nesting_depth('{"a": ' + brackets + ', "b": [1, [2]]}') == 3
    report = EmitReport()
    assert [p.number for p in parse_lines(['{"a": ' + brackets + "}"], report)] == [1]
    assert report.problems == []


def test_bytes_lines_that_are_not_utf8_are_reported() -> None:
    report = EmitReport()
    parsed = list(parse_lines([b'{"shop": "a"}\n', b'{"shop": "\xff"}\n'], report))
    assert [(p.number, p.key) for p in parsed] == [(1, b"a")]
    assert report.problems == ["2: not UTF-8: invalid start byte at byte 11"]


def test_not_json_names_the_column_of_the_line() -> None:
    report = EmitReport()
    assert list(parse_lines(['{"id": \n'], report)) == []
    assert report.problems == ["1: not JSON: Expecting value (column 8)"]
