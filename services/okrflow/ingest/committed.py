"""What a committed batch leaves behind: the pipeline metrics, one warning per dead letter,
and (at DEBUG) the batch's timings."""

from __future__ import annotations

import logging

from okrflow.ingest.metrics import PipelineMetrics
from okrflow.ingest.prepared import PendingBatch

logger = logging.getLogger(__name__)


def report_committed(
    metrics: PipelineMetrics, topic: str, pending: PendingBatch, committed_at: float
) -> None:
    """Record a batch just committed (okrflow.ingest.sink's step 3) at unix time
    `committed_at`."""
    result = pending.written.result
    dead_letters, records = pending.dead_letters, pending.prepared.records
    m = metrics
    m.batch_size.observe(len(records))
    m.last_commit.set(committed_at)
    m.events.labels("counted").inc(result.counted - result.unmatched)
    m.events.labels("unmatched").inc(result.unmatched)
    m.events.labels("duplicate").inc(result.duplicates)
    m.events.labels("replayed").inc(result.replayed)
    m.events.labels("invalid").inc(len(dead_letters))
    for rejected in dead_letters:
        m.dead_letters.labels(rejected.invalid.reason).inc()
        logger.warning(
            "invalid event at %s[%d]@%d: %s: %s",
            topic, rejected.partition, rejected.offset,
            rejected.invalid.reason, rejected.invalid.error,
        )  # fmt: skip
    # Sampled (at most ~200 records a batch): observing every record costs ~1 µs each.
    committed_ms = committed_at * 1000
    if logger.isEnabledFor(logging.DEBUG):
        _log_timings(pending, committed_ms)
    for record in records[:: max(1, len(records) // 200)]:
        timestamp = getattr(record, "timestamp", None)
        if timestamp is not None:
            m.commit_delay.observe(max(0.0, committed_ms - timestamp) / 1000)


def _log_timings(pending: PendingBatch, committed_at: float) -> None:
    """How old the batch's records were at its close, and when it was prepared, written and
    committed (milliseconds after its close)."""
    p, records = pending.prepared, pending.prepared.records
    stamps = [t for r in records if (t := getattr(r, "timestamp", None)) is not None]
    if stamps:
        logger.debug(
            "batch of %d: oldest %.0f ms old at close, newest %.0f; prepare %.0f ms; "
            "write from +%.0f ms to commit +%.0f ms after close",
            len(records), p.closed_at * 1000 - min(stamps),
            p.closed_at * 1000 - max(stamps), (p.prepared_at - p.closed_at) * 1000,
            (pending.started_at - p.closed_at) * 1000,
            committed_at - p.closed_at * 1000,
        )  # fmt: skip
