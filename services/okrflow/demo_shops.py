"""The two shops `okrflow demo` simulates: pure event generators, no I/O.

- salone-bella, a hair salon: increase clients by 15% in 6 months, with campaigns,
  partnerships and a new scalp-care service (3 months, refunds kept under 5%).
- studio-lumen, a photo studio's TikTok account: 50 new followers in 3 months, 3 posts a day
  Monday to Friday, 4 ads a month, 10 influencers contacted.

Both periods began weeks ago, so the demo first emits a backdated history (events with past
`time`s) close to the expected pace -- a little ahead on some key results, a little behind on
others -- so that pace and status mean something on the first screen. Then it emits live
events, a few a second. Event ids are derived from the shop, the day and a counter: emitting
the same history again is absorbed by the worker's duplicate check.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeAlias
from zoneinfo import ZoneInfo

from okrflow.jsontypes import JsonObject

TIMEZONE = "Europe/Rome"
SALON = "salone-bella"
STUDIO = "studio-lumen"
SHOPS = (SALON, STUDIO)

Event: TypeAlias = JsonObject


@dataclass(frozen=True)
class DemoPeriods:
    """The demo plans' periods, placed around `today` (`okrflow demo` fills the templates)."""

    today: date

    @property
    def salon(self) -> tuple[date, date]:  # six months, two months in
        start = self.today - timedelta(days=60)
        return start, start + timedelta(days=181)

    @property
    def quarter(self) -> tuple[date, date]:  # three months, one month in
        start = self.today - timedelta(days=30)
        return start, start + timedelta(days=90)

    def template_values(self) -> dict[str, str]:
        return {
            "salon_start": self.salon[0].isoformat(), "salon_end": self.salon[1].isoformat(),
            "quarter_start": self.quarter[0].isoformat(),
            "quarter_end": self.quarter[1].isoformat(),
        }  # fmt: skip


def _event(shop: str, event_id: str, event_type: str, at: datetime, data: Event) -> Event:
    return {
        "specversion": "1.0", "id": event_id, "source": f"/shops/{shop}/demo",
        "type": event_type, "time": at.isoformat(), "shop": shop, "data": data,
    }  # fmt: skip


def _spread(rng: random.Random, days: list[date], count: int) -> list[date]:
    """`count` days drawn from `days`, evenly spaced with a little jitter, in order."""
    if not days or count <= 0:
        return []
    step = len(days) / count
    picks = [days[min(len(days) - 1, int(i * step + rng.random() * step))] for i in range(count)]
    return sorted(picks)


def _moment(rng: random.Random, day: date) -> datetime:
    """Shop hours (09:00-19:00 local) on `day`, as an aware time."""
    local = datetime.combine(day, time(9), ZoneInfo(TIMEZONE))
    return local + timedelta(seconds=rng.randrange(10 * 3600))


def history(periods: DemoPeriods, seed: int = 7) -> Iterator[Event]:
    """Backdated events from each period's start to yesterday, near the expected pace."""
    rng = random.Random(seed)
    yield from _salon_history(periods, rng)
    yield from _studio_history(periods, rng)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def _salon_history(periods: DemoPeriods, rng: random.Random) -> Iterator[Event]:
    start, end = periods.salon
    past = _days(start, periods.today)
    share = len(past) / ((end - start).days + 1)  # the expected pace today
    counter = iter(range(10**9))

    def ev(event_type: str, day: date, data: Event) -> Event:
        return _event(SALON, f"hist-{SALON}-{day}-{next(counter)}", event_type,
                      _moment(rng, day), data)  # fmt: skip

    # new clients: 30 wanted over the period; a little ahead of pace
    for day in _spread(rng, past, round(30 * share * 1.05)):
        yield ev("customer.created", day, {"customer_id": f"c-{rng.randrange(10**6)}"})
    # campaigns: 10 wanted; a little behind
    for day in _spread(rng, past, round(10 * share * 0.8)):
        yield ev("campaign.launched", day, {"campaign_id": f"k-{rng.randrange(10**6)}",
                                            "channel": "instagram", "kind": "promo"})  # fmt: skip
    # partnerships: 3 distinct partners wanted
    for n, day in enumerate(_spread(rng, past, max(1, round(3 * share)))):
        yield ev("partnership.signed", day, {"partner_id": f"partner-{n}"})
    # the scalp-care service's quarter: promotions, sales, refunds
    q_start, q_end = periods.quarter
    quarter_past = _days(q_start, periods.today)
    q_share = len(quarter_past) / ((q_end - q_start).days + 1)
    for day in _spread(rng, quarter_past, round(4 * q_share)):
        yield ev("campaign.launched", day, {"campaign_id": f"k-{rng.randrange(10**6)}",
                                            "channel": "instagram", "kind": "promo",
                                            "service": "scalp-care"})  # fmt: skip
    orders = 0
    for day in quarter_past:
        for _ in range(rng.randint(1, 3)):
            orders += 1
            scalp = rng.random() < 0.15
            yield ev("order.placed", day, {
                "order_id": f"o-{rng.randrange(10**9)}", "customer_id": f"c-{rng.randrange(500)}",
                "total": round(rng.uniform(35, 70) if scalp else rng.uniform(15, 60), 2),
                "currency": "EUR", "service": "scalp-care" if scalp else "haircut",
            })  # fmt: skip
    for day in _spread(rng, quarter_past, orders // 40):  # refunds: about 2.5% of orders
        yield ev("order.refunded", day, {"order_id": f"o-{rng.randrange(10**9)}",
                                         "amount": 20, "currency": "EUR"})  # fmt: skip


def _studio_history(periods: DemoPeriods, rng: random.Random) -> Iterator[Event]:
    start, _ = periods.quarter
    past = _days(start, periods.today)
    counter = iter(range(10**9))

    def ev(event_type: str, day: date, data: Event, at: datetime | None = None) -> Event:
        return _event(STUDIO, f"hist-{STUDIO}-{day}-{next(counter)}", event_type,
                      at or _moment(rng, day), data)  # fmt: skip

    # followers: from 120, about half a follower a day (50 wanted in 90 days), reported nightly
    followers = 120
    for day in past:
        followers += rng.choice((0, 0, 1, 1, 1))
        evening = datetime.combine(day, time(21), ZoneInfo(TIMEZONE))
        yield ev("social.followers.changed", day, {"platform": "tiktok", "followers": followers},
                 evening)  # fmt: skip
    # posts: 3 a weekday, now and then only 2
    for day in past:
        if day.weekday() < 5:
            for _ in range(2 if rng.random() < 0.1 else 3):
                yield ev("social.post.published", day,
                         {"platform": "tiktok", "post_id": f"p-{rng.randrange(10**9)}"})  # fmt: skip
    # ads: 4 in each calendar month so far (this month's share only)
    by_month: dict[tuple[int, int], list[date]] = {}
    for day in past:
        by_month.setdefault((day.year, day.month), []).append(day)
    for month_days in by_month.values():
        wanted = round(4 * len(month_days) / 30)
        for day in _spread(rng, month_days, wanted):
            yield ev("campaign.launched", day, {"campaign_id": f"ad-{rng.randrange(10**6)}",
                                                "channel": "tiktok", "kind": "ad"})  # fmt: skip
    # influencers: 10 wanted, a third of the way
    for n, day in enumerate(_spread(rng, past, round(10 * len(past) / 90))):
        yield ev("influencer.contacted", day, {"platform": "tiktok", "influencer": f"creator-{n}"})


def live(rng: random.Random, now: datetime, tick: int) -> Iterator[Event]:
    """The events of one demo tick (about two seconds): now and then an order, a post, a new
    client, a campaign or an influencer -- faster than life, so progress moves on screen."""
    stamp = now.astimezone(UTC)

    def ev(shop: str, event_type: str, data: Event) -> Event:
        return _event(shop, f"live-{shop}-{stamp.timestamp():.0f}-{tick}-{rng.randrange(10**9)}",
                      event_type, stamp, data)  # fmt: skip

    if rng.random() < 0.3:
        scalp = rng.random() < 0.15
        yield ev(SALON, "order.placed", {
            "order_id": f"o-{rng.randrange(10**9)}", "customer_id": f"c-{rng.randrange(500)}",
            "total": round(rng.uniform(15, 70), 2), "currency": "EUR",
            "service": "scalp-care" if scalp else "haircut",
        })  # fmt: skip
    if rng.random() < 0.05:
        yield ev(SALON, "customer.created", {"customer_id": f"c-{rng.randrange(10**6)}"})
    if rng.random() < 0.03:
        yield ev(SALON, "campaign.launched", {"campaign_id": f"k-{rng.randrange(10**6)}",
                                              "channel": "instagram", "kind": "promo"})  # fmt: skip
    if rng.random() < 0.1:
        yield ev(STUDIO, "social.post.published",
                 {"platform": "tiktok", "post_id": f"p-{rng.randrange(10**9)}"})  # fmt: skip
    if rng.random() < 0.02:
        yield ev(STUDIO, "influencer.contacted",
                 {"platform": "tiktok", "influencer": f"creator-live-{rng.randrange(100)}"})  # fmt: skip
