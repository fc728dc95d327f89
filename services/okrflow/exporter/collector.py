"""The exporter's state: the current snapshot's renderer, refreshed in the background, and
the exporter's own health metrics (prometheus_client). A scrape never touches the database."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from okrflow.exporter.forecasts import ForecastBook
from okrflow.exporter.render import OkrRenderer
from okrflow.exporter.snapshot import ProgressSnapshot
from okrflow.failures import one_line

logger = logging.getLogger(__name__)


class ScrapeGate:
    """Lets scrapes go first: the refresh thread pauses at its checkpoints while a scrape
    renders (both need the GIL; the scrape is the one someone waits for)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._idle = threading.Event()
        self._idle.set()

    def __enter__(self) -> None:
        with self._lock:
            self._active += 1
            self._idle.clear()

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    def checkpoint(self) -> None:
        """Called by the refresh between chunks of work: waits (at most 1 s) for scrapes."""
        self._idle.wait(1.0)


class OkrCollector(Collector):
    """Holds the renderer of the last snapshot `refresh()` took; collects health metrics."""

    def __init__(
        self,
        take_snapshot: Callable[[float], ProgressSnapshot | None],
        gate: ScrapeGate | None = None,
        forget: Callable[[], None] = lambda: None,
        forecasts: bool = True,
    ) -> None:
        """`take_snapshot(now)` returns None when the database still matches the snapshot it
        returned last; `forget()` tells it that snapshot was not served (the refresh failed
        after reading it), so the next call must read a new one. `forecasts`: compute the
        forecast families (`OKRFLOW_EXPORTER_FORECASTS`)."""
        self._take_snapshot = take_snapshot
        self._forecasts = ForecastBook() if forecasts else None
        self._forget = forget
        self.gate = gate or ScrapeGate()
        self.renderer: OkrRenderer | None = None
        self._verified_at = 0.0  # when the database last matched the served snapshot
        self._refresh_errors = 0
        self._refresh_seconds = 0.0
        self.last_error: str | None = None  # why the last refresh failed, if it did

    @property
    def verified_at(self) -> float:
        """When (unix time) the database last matched the served snapshot; 0 before that."""
        return self._verified_at

    def refresh(self) -> None:
        """Take a new snapshot (blocks on the database) and forecast it as of now, until the
        refresh has lasted the forecast budget (`ForecastBook`). When the database still matches the served
        snapshot, forecasts still due are computed (those left over by the budget, and those
        grown old: the clock moves them). On failure keep serving the old one: its age
        (`okrflow_exporter_snapshot_age_seconds`) keeps growing until a refresh succeeds."""
        started = time.perf_counter()
        now = time.time()
        try:
            snapshot = self._take_snapshot(now)
            renderer = self.renderer
            if snapshot is not None:  # None: the database still matches the served snapshot
                self.renderer = OkrRenderer(
                    snapshot, self.gate.checkpoint, self._forecasts, started
                )
            elif renderer is not None:
                self.renderer = renderer.reforecast(now, self.gate.checkpoint, started)
            self._verified_at = now
        except Exception as exc:  # the database may be down; the old snapshot stays, its age grows
            self._refresh_errors += 1
            self._forget()
            self.last_error = one_line(exc)
            logger.warning(
                "snapshot refresh failed (serving the previous one): %s", self.last_error
            )
            logger.debug("snapshot refresh failed", exc_info=True)
        else:
            self.last_error = None
        self._refresh_seconds = time.perf_counter() - started

    def describe(self) -> Iterator[Metric]:
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self.renderer)

    def _families(self, renderer: OkrRenderer | None) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "okrflow_exporter_snapshot_age_seconds",
            "Seconds since the served snapshot was last known to match the database",
        )
        duration = GaugeMetricFamily(
            "okrflow_exporter_refresh_duration_seconds", "Seconds the last snapshot refresh took"
        )
        errors = CounterMetricFamily(
            "okrflow_exporter_refresh_errors", "Snapshot refreshes that failed"
        )
        if renderer is not None:
            age.add_metric([], max(0.0, time.time() - self._verified_at))
        duration.add_metric([], self._refresh_seconds)
        errors.add_metric([], self._refresh_errors)
        yield age
        yield duration
        yield errors


def refresh_forever(collector: OkrCollector, interval: float, stop: threading.Event) -> None:
    """Refresh every `interval` seconds until `stop` is set."""
    while not stop.wait(interval):
        collector.refresh()
