"""`okrflow backfill`'s progress: a bar per job on a terminal, a log line every 10 s without."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from okrflow.backfill import command as backfill_command
from okrflow.backfill.command import BarView, LogView
from okrflow.backfill.progress import JobProgress
from okrflow.store.backfill import JobRow


def test_the_bar_shows_each_job_and_what_it_counted() -> None:
    out = io.StringIO()
    view = BarView(Console(file=out, force_terminal=True, width=100, color_system=None))
    job = JobProgress(7, "salone-bella", total=2000)
    view.started(job)
    job.scanned, job.counted = 1000, 640
    view.advanced(job)
    job.scanned = 2000
    view.finished(job)
    view.stop()
    text = out.getvalue()
    assert "job 7 (salone-bella)" in text
    assert "2000/2000" in text and "640 counted" in text


def test_without_a_terminal_a_line_every_ten_seconds(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr(backfill_command.time, "monotonic", lambda: clock[0])
    view = LogView()
    job = JobProgress(3, "studio-lumen", total=500)
    with caplog.at_level(logging.INFO, logger=backfill_command.__name__):
        view.started(job)
        for step in range(1, 26):  # 25 chunks, one a second
            clock[0] += 1
            job.scanned = step * 20
            view.advanced(job)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "backfill job 3 (studio-lumen): 500 message(s) to read"
    assert lines[1:] == [
        "backfill job 3 (studio-lumen): 200 of 500 read, 0 counted",
        "backfill job 3 (studio-lumen): 400 of 500 read, 0 counted",
    ]


def test_wait_says_what_it_waits_for_every_thirty_seconds(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(backfill_command.time, "monotonic", lambda: clock[0])
    held = JobRow(4, "salone-bella", "running", "host:1:ab", None, 0, 0, None)
    scanned = JobRow(5, "studio-lumen", "running", None, None, 0, 0, None)
    said = clock[0] - 30
    with caplog.at_level(logging.INFO, logger=backfill_command.__name__):
        for _ in range(61):  # a minute of one-second polls
            said = backfill_command._say_what_waits([held, scanned], {5}, said)
            clock[0] += 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6  # at 0 s, 30 s and 60 s, both jobs each time
    assert lines[:2] == [
        "backfill --wait: job 4 (salone-bella) waits for its runner host:1:ab (taken over "
        "when its lease runs out)",
        "backfill --wait: job 5 (studio-lumen) waits for the workers to count past its scan "
        "(are they running?)",
    ]
