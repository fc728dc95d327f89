"""LocalDays (the hot path's local day, memoised by the hour) against local_day itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from okrflow.counting.localdays import LocalDays
from okrflow.domain.periods import local_day

# Zones with DST at 02:00/03:00, at local midnight (Santiago), half-hour DST (Lord Howe),
# :30 and :45 offsets (midnight inside a UTC hour), and a date-line jump (Apia, 2011-12-30).
ZONES = [
    "Europe/Rome", "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata",
    "Asia/Kathmandu", "Pacific/Chatham", "Pacific/Apia", "UTC",
]  # fmt: skip
# Days around transitions of these zones, walked minute by minute with odd seconds.
STARTS = [
    datetime(2026, 3, 28, 20, tzinfo=UTC), datetime(2026, 10, 24, 20, tzinfo=UTC),
    datetime(2026, 4, 3, 20, tzinfo=UTC), datetime(2026, 9, 5, 20, tzinfo=UTC),
    datetime(2011, 12, 28, 20, tzinfo=UTC), datetime(2026, 9, 26, 10, tzinfo=UTC),
]  # fmt: skip


@pytest.mark.parametrize("tz", ZONES)
def test_every_instant_gets_the_day_local_day_gives(tz: str) -> None:
    days = LocalDays()
    checked = 0
    for start in STARTS:
        for minute in range(0, 3 * 24 * 60, 7):  # bounded: three days a start
            instant = start + timedelta(minutes=minute, seconds=minute % 60, microseconds=999)
            # Producers send offsets of their own: the same instant, another zone.
            shown = instant.astimezone(timezone(timedelta(hours=(minute % 5) - 2)))
            assert days.day(tz, shown.timestamp(), shown) == local_day(shown, tz), shown
            checked += 1
    assert checked > 3000


def test_an_hour_holding_local_midnight_is_split_exactly() -> None:
    days = LocalDays()
    # Asia/Kolkata is UTC+05:30: its midnight falls at 18:30 UTC, inside the hour 18:00-19:00.
    before = datetime(2026, 3, 1, 18, 29, 59, 999999, tzinfo=UTC)
    after = datetime(2026, 3, 1, 18, 30, tzinfo=UTC)
    assert days.day("Asia/Kolkata", before.timestamp(), before).isoformat() == "2026-03-01"
    assert days.day("Asia/Kolkata", after.timestamp(), after).isoformat() == "2026-03-02"
