"""The intake's metrics (prefix `okrflow_intake_`), on the registry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from okrflow.ops.buildinfo import process_registry


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # Requests by route template and HTTP status.
        self.requests = Counter(
            "okrflow_intake_requests_total", "HTTP requests, by route and status",
            ["route", "status"], registry=registry,
        )  # fmt: skip
        # Time from the request's arrival to its response (produce acknowledged included).
        self.latency = Histogram(
            "okrflow_intake_request_seconds", "Seconds to answer a request, by route", ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )  # fmt: skip
        # Events acknowledged by the broker.
        self.produced = Counter(
            "okrflow_intake_events_produced_total", "Events produced to the events topic",
            ["source"], registry=registry,
        )  # fmt: skip
        # Events refused, by reason (decoder reason codes, or wrong_shop, too_many, ...).
        self.rejected = Counter(
            "okrflow_intake_events_rejected_total", "Events refused, by reason", ["reason"],
            registry=registry,
        )  # fmt: skip
        # Platform webhooks okrflow does not map (answered 202, nothing produced).
        self.ignored = Counter(
            "okrflow_intake_webhooks_ignored_total", "Webhooks with no okrflow event type",
            ["platform"], registry=registry,
        )  # fmt: skip


def intake_registry() -> CollectorRegistry:
    """A registry with okrflow_build_info and the standard process, platform and GC metrics."""
    return process_registry("intake")
