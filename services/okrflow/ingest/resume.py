"""Where the worker resumes each partition: the database's applied offsets are the truth.

Kafka's committed offsets only follow the database (they are committed after it). A database
restored from an older backup is therefore behind Kafka's committed offsets, and resuming
from the database catches it up; one whose offset is past the log's end (the topic was
deleted and created again, or truncated) cannot be resumed safely: the worker stops and says
how to resolve it (`okrflow offsets reset`, docs/operations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from okrflow.ingest.errors import WorkerFatal

logger = logging.getLogger(__name__)


class OffsetsAheadOfLog(WorkerFatal):
    """The database has applied offsets the topic does not have (any more)."""


def resume_positions(
    topic: str, applied: Mapping[int, int], bounds: Mapping[int, tuple[int, int]]
) -> dict[int, int]:
    """Partition -> offset to consume next. `applied`: the database's next offsets;
    `bounds`: each assigned partition's (log start, log end).

    No applied offset: from the log's start (nothing of it is counted). An applied offset
    before the log's start: retention deleted messages never counted; the worker logs it
    and goes on from the start. Past the log's end: raises OffsetsAheadOfLog.
    """
    ahead = {p: (applied[p], end) for p, (_, end) in bounds.items() if applied.get(p, 0) > end}
    if ahead:
        detail = ", ".join(
            f"partition {p}: database at offset {db}, log ends at {end}"
            for p, (db, end) in sorted(ahead.items())
        )
        raise OffsetsAheadOfLog(
            f"the database has counted {topic} further than the topic holds ({detail}); "
            f"was the topic deleted and created again? To count the topic as it is now, run "
            f"`okrflow offsets reset --to log-start` (see docs/operations.md)"
        )
    positions: dict[int, int] = {}
    for partition, (start, _end) in sorted(bounds.items()):
        db = applied.get(partition)
        if db is None:
            positions[partition] = start
        elif db < start:
            logger.error(
                "%s partition %d: offsets %d to %d were deleted by retention before they were "
                "counted; resuming at %d",
                topic, partition, db, start - 1, start,
            )  # fmt: skip
            positions[partition] = start
        else:
            positions[partition] = db
    return positions
