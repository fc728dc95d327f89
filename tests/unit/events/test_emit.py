from okrflow.events.emit import EmitReport, parse_lines


def test_parse_lines_reports_bad_lines_by_number_and_keeps_the_rest() -> None:
    report = EmitReport()
    lines = ['{"shop": "a", "id": "1"}\n', "not json\n", "\n", "[1]\n", '{"id": "2"}\n']
    parsed = list(parse_lines(lines, report))
    assert [(p.number, p.key) for p in parsed] == [(1, b"a"), (5, None)]
    assert report.problems[0].startswith("2: not JSON")
    assert report.problems[1] == "4: not a JSON object"
    assert len(report.problems) == 2
