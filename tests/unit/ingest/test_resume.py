"""Where each partition resumes: the database's applied offsets, checked against the log."""

import logging

import pytest

from okrflow.ingest.resume import OffsetsAheadOfLog, resume_positions


def test_resumes_at_the_database_offsets_not_kafkas() -> None:
    bounds = {0: (0, 900), 1: (0, 50), 2: (0, 0)}
    assert resume_positions("t", {0: 700, 1: 50}, bounds) == {0: 700, 1: 50, 2: 0}


def test_a_partition_the_database_never_applied_starts_at_the_log_start() -> None:
    assert resume_positions("t", {}, {0: (120, 300)}) == {0: 120}


def test_offsets_deleted_by_retention_are_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        assert resume_positions("t", {0: 10}, {0: (40, 90)}) == {0: 40}
    assert "offsets 10 to 39 were deleted by retention" in caplog.text


def test_past_the_log_end_stops_with_both_offsets_and_the_command() -> None:
    with pytest.raises(OffsetsAheadOfLog) as stopped:
        resume_positions("okr.events", {0: 5000, 1: 3}, {0: (0, 10), 1: (0, 3)})
    message = str(stopped.value)
    assert "partition 0: database at offset 5000, log ends at 10" in message
    assert "partition 1" not in message
    assert "okrflow offsets reset --to log-start" in message
    assert stopped.value.exit_code == 3
