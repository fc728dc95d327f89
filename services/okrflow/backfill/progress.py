"""What a backfill job has done so far, and where that goes (a bar, log lines, or nowhere)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

JobOutcome = Literal["done", "waiting", "cancelled", "fenced", "failed"]


@dataclass
class JobProgress:
    """What a running job has done so far (for the progress bar and the closing line)."""

    job_id: int
    shop: str
    total: int = 0  # messages below the cut to read, from where this run started
    scanned: int = 0
    counted: int = 0
    skipped: int = 0
    lost: int = 0
    outcome: JobOutcome | None = None


class ProgressView:
    """Where progress goes: a no-op here; the command shows a bar or log lines
    (okrflow.backfill.command)."""

    def started(self, job: JobProgress) -> None:
        pass

    def advanced(self, job: JobProgress) -> None:
        pass

    def finished(self, job: JobProgress) -> None:
        pass
