"""`--as-of`, `--from`, `--to`: a day a report cannot compute (its windows would leave the
calendar) is an operator error (exit 2, one line), not an unexpected OverflowError."""

from __future__ import annotations

from datetime import date

import pytest

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.reports.command import parse_day


@pytest.mark.parametrize("text", ["0001-01-01", "0001-01-02", "1899-12-31", "9999-12-31"])
def test_a_day_at_the_ends_of_the_calendar_is_refused(text: str) -> None:
    with pytest.raises(OperatorError) as refused:
        parse_day("--as-of", text)
    assert refused.value.code == ExitCode.USAGE
    assert "out of range" in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("text", ["1900-01-01", "2026-03-29", "9998-12-31"])
def test_a_day_in_range_is_read(text: str) -> None:
    assert parse_day("--to", text) == date.fromisoformat(text)


def test_not_a_date() -> None:
    with pytest.raises(OperatorError) as refused:
        parse_day("--from", "2026-02-30")
    assert refused.value.code == ExitCode.USAGE
