"""Shop-local calendar days of event times, looked up by the hour. Pure.

`local_day` (okrflow.domain.periods) converts every instant into the zone (~1 µs an event
on the hot path). A zone's offset changes at most at a few instants a year, so the day is
the same for every instant of almost every UTC hour: this keeps, per zone and UTC hour, that
day, and converts exactly only in an hour where the offset or the local date changes (local
midnight inside the hour, as in zones with :30 or :45 offsets, or a transition; no zone
changes its offset twice within one hour).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from okrflow.domain.periods import local_day, zone

_HOUR = 3600
_LAST_INSTANT = _HOUR - 1e-6  # the hour's last microsecond


class LocalDays:
    """The local day of an instant in a zone, memoised per (zone, UTC hour)."""

    __slots__ = ("_hours",)

    def __init__(self) -> None:
        # zone -> UTC hour -> the local day of all its instants, or None: convert each one.
        self._hours: dict[str, dict[int, date | None]] = {}

    def day(self, tz: str, timestamp: float, instant: datetime) -> date:
        """`local_day(instant, tz)`; `timestamp` is `instant.timestamp()`."""
        hours = self._hours.get(tz)
        if hours is None:
            hours = self._hours[tz] = {}
        hour = int(timestamp // _HOUR)
        try:
            day = hours[hour]
        except KeyError:
            day = hours[hour] = _whole_hour_day(tz, hour)
        return local_day(instant, tz) if day is None else day


def _whole_hour_day(tz: str, hour: int) -> date | None:
    """The local day of every instant of UTC hour `hour`, or None when it is not one day
    under one offset."""
    zone_info = zone(tz)
    first = datetime.fromtimestamp(hour * _HOUR, UTC).astimezone(zone_info)
    last = datetime.fromtimestamp(hour * _HOUR + _LAST_INSTANT, UTC).astimezone(zone_info)
    if first.utcoffset() != last.utcoffset() or first.date() != last.date():
        return None
    return first.date()
