"""Pipeline-health metrics of one worker (prefix `okrflow_`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class PipelineMetrics:
    """Every worker metric, registered on the registry passed in."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # Messages by what happened to them: counted, duplicate, replayed, invalid.
        self.events = Counter(
            "okrflow_events_total", "Messages consumed, by outcome", ["outcome"], registry=registry
        )
        # Invalid messages by reason code.
        self.dead_letters = Counter(
            "okrflow_dead_letters_total", "Invalid messages, by reason", ["reason"],
            registry=registry,
        )  # fmt: skip
        # Messages per database transaction.
        self.batch_size = Histogram(
            "okrflow_batch_size", "Messages per applied batch",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 20000), registry=registry,
        )  # fmt: skip
        # CPU time to decode, dead-letter and pre-count one batch (overlaps the previous commit).
        self.prepare_seconds = Histogram(
            "okrflow_batch_prepare_seconds", "Seconds to decode, dead-letter and pre-count one batch",
            registry=registry,
        )  # fmt: skip
        # Time to apply one batch in the database, commit included.
        self.commit_seconds = Histogram(
            "okrflow_batch_commit_seconds", "Seconds to apply and commit one batch",
            registry=registry,
        )  # fmt: skip
        # Messages behind the end of each partition, after the last applied batch.
        self.lag = Gauge(
            "okrflow_consumer_lag", "Messages not yet applied, per partition", ["partition"],
            registry=registry,
        )  # fmt: skip
        # Batches retried because the database was unreachable.
        self.database_retries = Counter(
            "okrflow_database_retries", "Batch transactions retried for an unreachable database",
            registry=registry,
        )  # fmt: skip
        # From a message's producer timestamp to its batch's commit (sampled per batch).
        self.commit_delay = Histogram(
            "okrflow_event_commit_delay_seconds",
            "Seconds from produce (record timestamp) to commit, sampled: up to ~200 messages a batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 5, 10, 30, 60, 300),
            registry=registry,
        )  # fmt: skip
        # Shops (Kafka keys, or messages without one) whose invalid share over the guard's
        # window passes OKRFLOW_MAX_INVALID_SHARE: now, and quarantines begun. No labels: a
        # key is payload (the worker's log names the shop, docs/operations.md).
        self.quarantined = Gauge(
            "okrflow_quarantined_sources", "Sources over the invalid share now", registry=registry
        )
        self.quarantines = Counter(
            "okrflow_quarantines_total", "Sources that passed the invalid share (quarantines begun)",
            registry=registry,
        )  # fmt: skip
        # Unix time of the last committed batch.
        self.last_commit = Gauge(
            "okrflow_last_commit_timestamp_seconds", "Unix time of the last committed batch",
            registry=registry,
        )  # fmt: skip
