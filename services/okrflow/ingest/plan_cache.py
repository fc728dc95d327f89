"""The plans in force, as the worker counts with them: a match index and its plan revision,
reloaded whenever `okrflow apply` moved the revision."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Connection

from okrflow.counting.matching import MatchIndex
from okrflow.domain.plans import ActivePlan
from okrflow.plans.stored import load_active_plans
from okrflow.store.plans import plans_revision

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedPlans:
    """A match index and the plan revision it was built from: read and replaced together
    (with the plans themselves, which the counting helper builds its own index from)."""

    revision: int
    index: MatchIndex
    plans: list[ActivePlan] = field(default_factory=list)


class PlanCache:
    """The worker's match index, reloaded whenever a plan changed (so `okrflow apply`
    reaches running workers with their next batch). `loaded` is replaced in one assignment,
    so a reader on another thread never pairs an index with another revision."""

    def __init__(self) -> None:
        self.loaded = LoadedPlans(-1, MatchIndex([]))

    def refresh(self, conn: Connection, *, hold_clock: bool = False) -> LoadedPlans:
        """The plans in force as `conn` sees them (reloaded only when the revision moved).
        `hold_clock`: inside a batch transaction, keep the plan clock share-locked to its end,
        so an apply cannot commit between this read and the batch's commit."""
        revision = plans_revision(conn, share_lock=hold_clock)
        loaded = self.loaded
        if revision != loaded.revision:
            active = load_active_plans(conn)
            loaded = LoadedPlans(revision, MatchIndex(active), active)
            self.loaded = loaded
            logger.info(
                "plans at revision %d: %d key-result series", revision, loaded.index.target_count
            )
        return loaded
