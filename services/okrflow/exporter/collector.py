"""The custom collector: renders the latest snapshot; a scrape never touches the database."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from okrflow.exporter.snapshot import ProgressSnapshot

logger = logging.getLogger(__name__)


class OkrCollector(Collector):
    """Serves the metrics of the last snapshot `refresh()` took."""

    def __init__(self, take_snapshot: Callable[[float], ProgressSnapshot]) -> None:
        self._take_snapshot = take_snapshot
        self._snapshot: ProgressSnapshot | None = None
        self._refresh_errors = 0

    def refresh(self) -> None:
        """Take a new snapshot (blocks on the database). On failure keep the old one."""
        try:
            self._snapshot = self._take_snapshot(time.time())
        except Exception:  # the database may be down; the old snapshot stays, its age grows
            self._refresh_errors += 1
            logger.exception("snapshot refresh failed")

    def describe(self) -> Iterator[Metric]:
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self._snapshot)

    def _families(self, snap: ProgressSnapshot | None) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "okr_shop_events", "Valid events counted per shop and type", labels=["shop", "type"]
        )
        age = GaugeMetricFamily(
            "okrflow_exporter_snapshot_age_seconds", "Seconds since the served snapshot was taken"
        )
        errors = CounterMetricFamily(
            "okrflow_exporter_refresh_errors", "Snapshot refreshes that failed"
        )
        if snap is not None:
            for shop, event_type, n in snap.shop_events:
                events.add_metric([shop, event_type], n)
            age.add_metric([], max(0.0, time.time() - snap.taken_at))
        errors.add_metric([], self._refresh_errors)
        yield events
        yield age
        yield errors


def refresh_forever(collector: OkrCollector, interval: float, stop: threading.Event) -> None:
    """Refresh every `interval` seconds until `stop` is set."""
    while not stop.wait(interval):
        collector.refresh()
