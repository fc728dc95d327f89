"""The pure parts of `okrflow revisions`: times in UTC, change lines as `apply` printed them,
revision ids as typed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.plans.revisions import change_lines, parse_revision_id, utc_text
from okrflow.store.revisions import RevisionRow


def test_times_are_shown_in_utc_whether_the_database_gives_them_naive_or_not() -> None:
    rome = timezone(timedelta(hours=1))
    assert utc_text(datetime(2026, 2, 1, 10, 30, 5, tzinfo=rome)) == "2026-02-01T09:30:05Z"
    assert utc_text(datetime(2026, 2, 1, 10, 30, 5)) == "2026-02-01T10:30:05Z"
    assert utc_text(datetime(2026, 2, 1, 10, 30, 5, tzinfo=UTC)) == "2026-02-01T10:30:05Z"


def test_changes_read_as_apply_printed_them() -> None:
    revision = RevisionRow(
        3, "salone-bella", datetime(2026, 2, 1, tzinfo=UTC),
        [
            {"action": "added", "what": "objective reach", "detail": ""},
            {"action": "changed", "what": "key result reach/posts", "detail": "target: 10 -> 12"},
        ],
    )  # fmt: skip
    assert change_lines(revision) == [
        "added    objective reach",
        "changed  key result reach/posts (target: 10 -> 12)",
    ]


@pytest.mark.parametrize("text", ["abc", "-1", "1.5", "", "٣"])
def test_an_id_that_is_not_a_number_is_a_usage_error(text: str) -> None:
    with pytest.raises(OperatorError) as caught:
        parse_revision_id(text)
    assert caught.value.code == ExitCode.USAGE


def test_ids_are_numbers() -> None:
    assert parse_revision_id("42") == 42
