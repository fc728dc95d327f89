"""The worker's housekeeping between batches: freezing the baselines that are due, and
pruning the event ids past the dedupe window and the KPI days past the topic's retention."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from okrflow.failures import one_line
from okrflow.ingest.clock import SYSTEM_CLOCK, Clock
from okrflow.plans.freeze import freeze_due_baselines
from okrflow.plans.kpis import MAX_WINDOW_DAYS
from okrflow.settings import Settings
from okrflow.store.batches import prune_seen_events
from okrflow.store.kpis import prune_kpi_distinct_days

logger = logging.getLogger(__name__)

FREEZE_EVERY_SECONDS = 60.0  # how often a worker freezes the baselines from data that are due


class Housekeeping:
    """Run on the sink's database thread only while no batch transaction of this worker is
    open (after a commit, or when idle): the freeze takes the plan clock, which an open batch
    holds."""

    def __init__(self, settings: Settings, engine: Engine, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self._last_prune = 0.0
        self._last_freeze = 0.0

    def freeze_due(self) -> bool:
        """Whether a minute has passed since the last freeze."""
        return self.clock.monotonic() - self._last_freeze >= FREEZE_EVERY_SECONDS

    def freeze(self) -> None:
        """Freeze the baselines from data that are due (okrflow.plans.freeze)."""
        self._last_freeze = self.clock.monotonic()
        try:
            freeze_due_baselines(self.engine, self.settings.events_topic, self.clock.now())
        except DBAPIError as exc:  # the database is down, or busy: the next minute retries
            logger.warning(
                "could not freeze baselines (%s); trying again in a minute",
                one_line(exc),
            )

    def after_commit(self) -> None:
        """The freeze when due, and the prunes every `OKRFLOW_DEDUPE_PRUNE_SECONDS`."""
        if self.freeze_due():
            self.freeze()
        now = self.clock.monotonic()
        if now - self._last_prune >= self.settings.dedupe_prune_seconds:
            self._last_prune = now
            removed = prune_seen_events(
                self.engine, self.clock.now(), self.settings.dedupe_window_seconds
            )
            if removed:
                logger.info("pruned %d event ids older than the dedupe window", removed)
            self._prune_kpi_days()

    def _prune_kpi_days(self) -> None:
        """A KPI's distinct values per day are kept as long as the events topic keeps events,
        plus the longest window (366 days); with unlimited retention, forever."""
        days = self.settings.events_retention_days
        if days < 0:
            return
        before = self.clock.now().date() - timedelta(days=days + MAX_WINDOW_DAYS)
        with self.engine.begin() as conn:
            removed = prune_kpi_distinct_days(conn, before)
        if removed:
            logger.info("pruned %d KPI distinct values of days before %s", removed, before)
