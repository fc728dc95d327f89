"""What one batch adds to one key-result series: the value type between counting and storing.

Pure: built by okrflow.ingest (from events), written by okrflow.store (as SQL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

SeriesKey = tuple[int, str]  # (key_result_id, part): value | numerator | denominator


@dataclass
class SeriesDelta:
    """What one batch adds to one series."""

    aggregate: str
    events: int = 0
    # day -> [events, total]; count_distinct keeps its new values here at write time instead.
    days: dict[date, list[float]] = field(default_factory=dict)
    distinct: dict[str, date] = field(default_factory=dict)  # value -> earliest local day
    # Per local day, for `progress --as-of` and `history`: latest / max / min's level of the
    # day and when it was reached, and every aggregate's newest event time of the day. The
    # batch's level and newest event time are folded from them (once, not per event).
    day_levels: dict[date, tuple[float, datetime]] = field(default_factory=dict)
    day_last_event_at: dict[date, datetime] = field(default_factory=dict)
    # A KPI's count_distinct (rolling windows): every (local day, value) seen, not only each
    # value's earliest day. None for every other series.
    value_days: set[tuple[date, str]] | None = None

    @property
    def level(self) -> float | None:
        return self._level()[0]

    @property
    def level_at(self) -> datetime | None:
        return self._level()[1]

    def _level(self) -> tuple[float | None, datetime | None]:
        level: float | None = None
        level_at: datetime | None = None
        for day in sorted(self.day_levels):
            value, at = self.day_levels[day]
            level, level_at = merge_level(self.aggregate, level, level_at, value, at)
        return level, level_at

    @property
    def last_event_at(self) -> datetime | None:
        return max(self.day_last_event_at.values(), default=None)

    def add(self, at: datetime, day: date, value: float | str) -> None:
        """Count one event of time `at` (local day `day`) with its aggregated `value`: a
        number for count/sum/latest/max/min, a canonical text for count_distinct."""
        self.events += 1
        day_last = self.day_last_event_at.get(day)
        if day_last is None or at > day_last:
            self.day_last_event_at[day] = at
        if self.aggregate in ("count", "sum"):
            bucket = self.days.setdefault(day, [0, 0.0])
            bucket[0] += 1
            bucket[1] += 1 if self.aggregate == "count" else float(value)
        elif self.aggregate == "count_distinct":
            # A value belongs to the earliest local day of any event carrying it.
            seen = self.distinct.get(str(value))
            if seen is None or day < seen:
                self.distinct[str(value)] = day
            if self.value_days is not None:
                self.value_days.add((day, str(value)))
        else:
            bucket = self.days.setdefault(day, [0, 0.0])
            bucket[0] += 1
            level, level_at = self.day_levels.get(day, (None, None))
            self.day_levels[day] = merge_level(self.aggregate, level, level_at, float(value), at)


def merge_level(
    aggregate: str, level: float | None, level_at: datetime | None, value: float, at: datetime,
    *, prefer_existing: bool = False,
) -> tuple[float, datetime]:  # fmt: skip
    """latest: the value with the newest event time (a tie keeps the later arrival, or with
    `prefer_existing` the stored level: a backfill's events precede everything stored live);
    max / min: the extreme value (its time is when it was reached)."""
    if level is None or level_at is None:
        return value, at
    if aggregate == "latest":
        newer = at > level_at if prefer_existing else at >= level_at
        return (value, at) if newer else (level, level_at)
    if aggregate == "max":
        return (value, at) if value > level else (level, level_at)
    return (value, at) if value < level else (level, level_at)
