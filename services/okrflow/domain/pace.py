"""Expected pace and status (docs/formulas.md): the part of a definition's judgment that
moves with the clock. A `PaceRule` is built once per definition (cached) and applied at any
instant; `domain.progress` measures what was counted, this judges it."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from okrflow.domain.model import KeyResult, Objective, Period, Status, Thresholds
from okrflow.domain.periods import cadence_slots, period_bounds

DEFAULT_THRESHOLDS = Thresholds()


def clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def status_at(
    now: float, start: float, end: float, progress: float, expected: float, thresholds: Thresholds
) -> Status:
    """The status rule of docs/formulas.md, in its order (instants as unix times)."""
    if now < start:
        return "not_started"
    if progress >= 1:
        return "achieved"
    if now >= end:
        return "missed"
    gap = expected - clamp01(progress)
    if gap <= thresholds.at_risk:
        return "on_track"
    if gap <= thresholds.off_track:
        return "at_risk"
    return "off_track"


@dataclass(frozen=True, slots=True)
class PaceRule:
    """What judging expected pace and status needs, as unix times: built once per definition,
    applied at any instant (the exporter applies it at every scrape)."""

    start: float
    end: float
    thresholds: Thresholds
    maintain: bool = False
    slot_ends: tuple[float, ...] = ()  # cadence slots, in time order
    slot_starts: tuple[float, ...] = ()

    def expected(self, now: float) -> float:
        if not self.slot_ends:
            return _fraction(now, self.start, self.end)
        ended = bisect_right(self.slot_ends, now)
        current = (
            _fraction(now, self.slot_starts[ended], self.slot_ends[ended])
            if ended < len(self.slot_ends)
            else 0.0
        )
        return (ended + current) / len(self.slot_ends)

    def judge(self, progress: float, now: float) -> tuple[float, Status]:
        """(expected, status) at `now` for a definition whose progress is `progress`."""
        expected = self.expected(now)
        return expected, self.status(progress, now, expected)

    def status(self, progress: float, now: float, expected: float) -> Status:
        """The status at `now` of a definition with this progress, given `expected(now)`."""
        if not self.maintain:
            return status_at(now, self.start, self.end, progress, expected, self.thresholds)
        # A maintain key result's progress is 1 while its condition holds.
        if now < self.start:
            return "not_started"
        if now >= self.end:
            return "achieved" if progress >= 1 else "missed"
        return "on_track" if progress >= 1 else "off_track"

    def judge_ascending(
        self, progresses: Sequence[float], now: float
    ) -> tuple[float, list[tuple[Status, int, int]]]:
        """`judge` for definitions sharing this rule (same period, pace and thresholds), given
        their progresses in ascending order (no NaN): the expected pace, computed once, and
        their statuses as runs `(status, first index, index after the last)`.

        At a given instant a definition's status never falls as its progress rises (not
        started; then missed < achieved once the period ended; off track < at risk < on track
        < achieved while it runs), so each run's end is found by bisection: O(log n) status
        judgments per run instead of one per definition.
        """
        expected = self.expected(now)
        runs: list[tuple[Status, int, int]] = []
        first, n = 0, len(progresses)
        while first < n:  # at most one pass per status
            status = self.status(progresses[first], now, expected)
            rank = STATUS_RANK[status]
            after = bisect_right(
                range(n), rank, first + 1, n,
                key=lambda i: STATUS_RANK[self.status(progresses[i], now, expected)],
            )  # fmt: skip
            runs.append((status, first, after))
            first = after
        return expected, runs


# The order statuses take as progress rises, at any one instant.
STATUS_RANK: dict[Status, int] = {
    "not_started": 0, "missed": 1, "off_track": 2, "at_risk": 3, "on_track": 4, "achieved": 5,
}  # fmt: skip


def _fraction(now: float, start: float, end: float) -> float:
    if now <= start:
        return 0.0
    if now >= end:
        return 1.0
    return (now - start) / (end - start)


@lru_cache(maxsize=65536)
def key_result_pace(
    kr: KeyResult, period: Period, tz: str, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> PaceRule:
    start, end = period_bounds(period, tz)
    if kr.cadence is not None:
        slots = cadence_slots(period, kr.cadence, tz)
        return PaceRule(
            start.timestamp(), end.timestamp(), thresholds,
            slot_ends=tuple(s.end.timestamp() for s in slots),
            slot_starts=tuple(s.start.timestamp() for s in slots),
        )  # fmt: skip
    return PaceRule(
        start.timestamp(), end.timestamp(), thresholds, maintain=kr.maintain is not None
    )


@lru_cache(maxsize=65536)
def objective_pace(objective: Objective, tz: str) -> PaceRule:
    start, end = period_bounds(objective.period, tz)
    return PaceRule(start.timestamp(), end.timestamp(), objective.thresholds)


def judge_key_result(
    kr: KeyResult, period: Period, tz: str, progress: float, now: datetime,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> tuple[float, Status]:  # fmt: skip
    """Expected progress and status of a key result at `now`, given its progress: the part of
    docs/formulas.md that moves with the clock."""
    return key_result_pace(kr, period, tz, thresholds).judge(progress, now.timestamp())


def judge_objective(
    objective: Objective, tz: str, progress: float, now: datetime
) -> tuple[float, Status]:
    """Expected progress (linear over the period) and status of an objective at `now`."""
    return objective_pace(objective, tz).judge(progress, now.timestamp())
