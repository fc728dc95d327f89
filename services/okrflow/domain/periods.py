"""Periods and cadence slots in a shop's time zone; every returned instant is UTC.

Instants are compared and subtracted in UTC only: Python subtracts two datetimes that share
a tzinfo by wall time, which would be wrong by an hour across a DST change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from okrflow.domain.model import Cadence, Period


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_midnight(day: date, tz: str) -> datetime:
    """00:00 local time of `day`, as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=zone(tz)).astimezone(UTC)


def local_day(instant: datetime, tz: str) -> date:
    """The shop's calendar date at `instant` (an aware datetime)."""
    return instant.astimezone(zone(tz)).date()


@lru_cache(maxsize=65536)
def period_bounds(period: Period, tz: str) -> tuple[datetime, datetime]:
    """[start, end): the first day's local midnight and the local midnight after the last day."""
    return local_midnight(period.start, tz), local_midnight(period.end + timedelta(days=1), tz)


def days(period: Period) -> Iterator[date]:
    day = period.start
    while day <= period.end:
        yield day
        day += timedelta(days=1)


@dataclass(frozen=True)
class Slot:
    """One cadence slot: its local days and its [start, end) instants."""

    days: tuple[date, ...]
    start: datetime
    end: datetime


@lru_cache(maxsize=16384)
def cadence_slots(period: Period, cadence: Cadence, tz: str) -> tuple[Slot, ...]:
    """The period cut into slots: local days on the cadence's weekdays, ISO weeks, or calendar
    months, each clipped to the period."""
    groups: dict[object, list[date]] = {}
    for day in days(period):
        if cadence.every == "day":
            if day.weekday() in cadence.weekdays:
                groups[day] = [day]
        elif cadence.every == "week":
            iso = day.isocalendar()
            groups.setdefault((iso.year, iso.week), []).append(day)
        else:
            groups.setdefault((day.year, day.month), []).append(day)
    return tuple(
        Slot(tuple(ds), local_midnight(ds[0], tz), local_midnight(ds[-1] + timedelta(days=1), tz))
        for ds in groups.values()
    )


@lru_cache(maxsize=16384)
def slot_of_day(period: Period, cadence: Cadence, tz: str) -> dict[date, int]:
    """Local day -> index of the cadence slot holding it (days in no slot are absent)."""
    return {day: i for i, s in enumerate(cadence_slots(period, cadence, tz)) for day in s.days}
