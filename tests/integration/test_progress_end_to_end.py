"""Both example plans, a stream through the real broker, and `okrflow progress --at T` checked
against values, progress and statuses computed here, independently of okrflow's code."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.conftest import REPO
from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.services import wait_for

EXAMPLES = REPO / "schemas" / "examples" / "okrs"
ROME = ZoneInfo("Europe/Rome")
SALON, STUDIO = "salone-bella", "studio-lumen"


class Stream:
    """Events to emit, and how many of them are valid and unique (what the worker counts)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.unique: set[tuple[str, str]] = set()

    def add(
        self,
        shop: str,
        event_type: str,
        time: str,
        data: dict[str, Any],
        event_id: str | None = None,
    ) -> None:
        event_id = event_id or f"{shop}-{len(self.lines)}"
        self.lines.append(
            json.dumps(
                cloud_event(event_id, shop=shop, event_type=event_type, time=time, data=data)
            )
        )
        self.unique.add((shop, event_id))

    def write(self, path: Path) -> Path:
        path.write_text("\n".join(self.lines) + "\n")
        return path


def salon_stream() -> Stream:
    s = Stream()
    # new clients: 11 in February, plus the period's first local instant and 00:30 on 1 January
    # in Rome (23:30 UTC the day before) count; one second before the period and one after don't.
    for i in range(11):
        s.add(
            SALON,
            "customer.created",
            f"2026-02-{i + 1:02d}T10:00:00+01:00",
            {"customer_id": f"c{i}"},
        )
    s.add(SALON, "customer.created", "2026-01-01T00:00:00+01:00", {"customer_id": "edge"})
    s.add(SALON, "customer.created", "2025-12-31T23:59:59+01:00", {"customer_id": "before"})
    s.add(SALON, "customer.created", "2025-12-31T23:30:00Z", {"customer_id": "rome-new-year"})
    s.add(SALON, "customer.created", "2026-07-01T00:00:00+02:00", {"customer_id": "after"})
    # A producer retry: the same id again counts once.
    s.add(
        SALON,
        "customer.created",
        "2026-02-01T10:00:00+01:00",
        {"customer_id": "c0"},
        event_id=f"{SALON}-0",
    )
    # campaigns: 6 in Jan-Jun; promos of scalp care (promo or ad, Jan-Mar): 3
    for when, kind, service in [
        ("2026-01-10T09:00:00+01:00", "promo", "scalp-care"),
        ("2026-01-20T09:00:00+01:00", "ad", "scalp-care"),
        ("2026-02-10T09:00:00+01:00", "email", "scalp-care"),
        ("2026-03-10T09:00:00+01:00", "promo", "scalp-care"),
        ("2026-04-10T09:00:00+02:00", "promo", "scalp-care"),
        ("2026-05-10T09:00:00+02:00", "promo", "haircut"),
    ]:
        s.add(
            SALON,
            "campaign.launched",
            when,
            {"campaign_id": when, "channel": "instagram", "kind": kind, "service": service},
        )
    # partners: p1, p2, p1 again, p3 after the period -> 2 distinct
    for when, partner in [
        ("2026-01-05", "p1"),
        ("2026-02-05", "p2"),
        ("2026-03-05", "p1"),
        ("2026-07-05", "p3"),
    ]:
        s.add(SALON, "partnership.signed", f"{when}T12:00:00+01:00", {"partner_id": partner})
    # orders (Jan-Mar): scalp care 100 + 250.5 count in revenue; 0 fails `gt: 0`; haircut is another service
    for when, total, service in [
        ("2026-01-15", 100, "scalp-care"),
        ("2026-02-15", 250.5, "scalp-care"),
        ("2026-02-16", 0, "scalp-care"),
        ("2026-02-17", 40, "haircut"),
    ]:
        s.add(
            SALON,
            "order.placed",
            f"{when}T12:00:00+01:00",
            {
                "order_id": when,
                "customer_id": "c1",
                "total": total,
                "currency": "EUR",
                "service": service,
            },
        )
    s.add(
        SALON,
        "order.refunded",
        "2026-02-20T12:00:00+01:00",
        {"order_id": "x", "amount": 40, "currency": "EUR"},
    )
    # other shops and types no key result counts
    s.add("other-shop", "customer.created", "2026-02-01T10:00:00+01:00", {"customer_id": "o1"})
    s.add(SALON, "service.launched", "2026-02-01T10:00:00+01:00", {"service": "scalp-care"})
    return s


def studio_stream() -> tuple[Stream, Stream]:
    s = Stream()
    s.add(
        STUDIO,
        "social.followers.changed",
        "2026-01-10T12:00:00+01:00",
        {"platform": "tiktok", "followers": 130},
    )
    s.add(
        STUDIO,
        "social.followers.changed",
        "2026-02-01T12:00:00+01:00",
        {"platform": "tiktok", "followers": 150},
    )
    s.add(
        STUDIO,
        "social.followers.changed",
        "2026-02-05T12:00:00+01:00",
        {"platform": "instagram", "followers": 999},
    )
    for day, n in [(5, 4), (6, 2), (10, 3)]:  # Mon 5 Jan: 4 posts, Tue 6: 2, Sat 10: 3 (no slot)
        for i in range(n):
            s.add(
                STUDIO,
                "social.post.published",
                f"2026-01-{day:02d}T{9 + i:02d}:00:00+01:00",
                {"platform": "tiktok", "post_id": f"{day}-{i}"},
            )
    s.add(
        STUDIO,
        "social.post.published",
        "2026-01-07T09:00:00+01:00",
        {"platform": "instagram", "post_id": "ig"},
    )
    for when in [
        "2026-01-03",
        "2026-01-09",
        "2026-01-15",
        "2026-01-21",
        "2026-01-27",
        "2026-02-02",
    ]:  # 5 in Jan, 1 in Feb
        s.add(
            STUDIO,
            "campaign.launched",
            f"{when}T12:00:00+01:00",
            {"campaign_id": when, "channel": "tiktok", "kind": "ad"},
        )
    for name in ["ana", "bo", "ana"]:
        s.add(
            STUDIO,
            "influencer.contacted",
            "2026-01-12T12:00:00+01:00",
            {"influencer": name, "platform": "tiktok"},
        )
    late = Stream()
    # Late: older than what was already counted. It counts, but `latest` stays the 1 Feb value.
    late.add(
        STUDIO,
        "social.followers.changed",
        "2026-01-20T12:00:00+01:00",
        {"platform": "tiktok", "followers": 140},
        "late-1",
    )
    late.add(
        STUDIO,
        "social.post.published",
        "2026-01-06T20:00:00+01:00",
        {"platform": "tiktok", "post_id": "late"},
        "late-2",
    )
    return s, late


# --- the expected results, computed here --------------------------------------------------------


def bounds(start: date, end: date) -> tuple[datetime, datetime]:
    first = datetime(start.year, start.month, start.day, tzinfo=ROME).astimezone(UTC)
    after = end + timedelta(days=1)
    return first, datetime(after.year, after.month, after.day, tzinfo=ROME).astimezone(UTC)


def linear(at: datetime, start: date, end: date) -> float:
    a, b = bounds(start, end)
    return min(1.0, max(0.0, (at - a).total_seconds() / (b - a).total_seconds()))


def slots_expected(at: datetime, slots: list[tuple[date, date]]) -> float:
    return sum(linear(at, a, b) for a, b in slots) / len(slots)


def weekday_slots(start: date, end: date) -> list[tuple[date, date]]:
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return [(d, d) for d in days if d.weekday() < 5]


MONTHS_Q1 = [
    (date(2026, 1, 1), date(2026, 1, 31)),
    (date(2026, 2, 1), date(2026, 2, 28)),
    (date(2026, 3, 1), date(2026, 3, 31)),
]


def status(at: datetime, start: date, end: date, p: float, e: float) -> str:
    a, b = bounds(start, end)
    if at < a:
        return "not_started"
    if p >= 1:
        return "achieved"
    if at >= b:
        return "missed"
    gap = e - min(1.0, max(0.0, p))
    return "on_track" if gap <= 0.10 else "at_risk" if gap <= 0.25 else "off_track"


def expected_report(at: datetime) -> dict[tuple[str, str, str | None], tuple[float, float, str]]:
    """(shop, objective, key result or None) -> (value or progress, expected, status)."""
    H1, Q1 = (date(2026, 1, 1), date(2026, 6, 30)), (date(2026, 1, 1), date(2026, 3, 31))
    out: dict[tuple[str, str, str | None], tuple[float, float, str]] = {}
    krs = {
        # salon / more-clients (H1): value, baseline, target, weight
        ("more-clients", "new-clients"): (200 + 13, 200, 230, 1, H1),
        ("more-clients", "campaigns"): (6, 0, 10, 2, H1),
        ("more-clients", "partners"): (2, 0, 3, 1, H1),
        ("new-service", "promos"): (3, 0, 4, 1, Q1),
        ("new-service", "revenue"): (350.5, 0, 1500, 1, Q1),
    }
    progress: dict[str, list[tuple[float, float]]] = {"more-clients": [], "new-service": []}
    for (obj, kr), (value, baseline, target, weight, period) in krs.items():
        p = (value - baseline) / (target - baseline)
        e = linear(at, *period)
        out[SALON, obj, kr] = (value, e, status(at, *period, p, e))
        progress[obj].append((weight, min(1.0, max(0.0, p))))
    # refund rate: 1 refund / 4 orders = 0.25, not below 0.05 -> broken
    e = linear(at, *Q1)
    a, b = bounds(*Q1)
    refund_status = "not_started" if at < a else ("missed" if at >= b else "off_track")
    out[SALON, "new-service", "refund-rate"] = (0.25, e, refund_status)
    progress["new-service"].append((1, 0.0))
    mean = lambda parts: sum(w * p for w, p in parts) / sum(w for w, _ in parts)  # noqa: E731
    new_service = mean(progress["new-service"])
    e = linear(at, *Q1)
    out[SALON, "new-service", None] = (new_service, e, status(at, *Q1, new_service, e))
    more_clients = mean([*progress["more-clients"], (1, new_service)])
    e = linear(at, *H1)
    out[SALON, "more-clients", None] = (more_clients, e, status(at, *H1, more_clients, e))

    # studio / tiktok (Q1)
    parts = []
    followers_p = (150 - 120) / (170 - 120)
    e = linear(at, *Q1)
    out[STUDIO, "tiktok", "followers"] = (150, e, status(at, *Q1, followers_p, e))
    parts.append(followers_p)
    posts_slots = weekday_slots(*Q1)
    credited = min(4, 3) + min(2 + 1, 3)  # the late post lands on Tue 6 Jan
    posts_p = credited / (3 * len(posts_slots))
    e = slots_expected(at, posts_slots)
    out[STUDIO, "tiktok", "daily-posts"] = (credited, e, status(at, *Q1, posts_p, e))
    parts.append(posts_p)
    ads_p = (min(5, 4) + 1) / 12
    e = slots_expected(at, MONTHS_Q1)
    out[STUDIO, "tiktok", "monthly-ads"] = (5, e, status(at, *Q1, ads_p, e))
    parts.append(ads_p)
    infl_p = 2 / 10
    e = linear(at, *Q1)
    out[STUDIO, "tiktok", "influencers"] = (2, e, status(at, *Q1, infl_p, e))
    parts.append(infl_p)
    tiktok = sum(min(1.0, p) for p in parts) / 4
    out[STUDIO, "tiktok", None] = (tiktok, e, status(at, *Q1, tiktok, e))
    return out


INSTANTS = [
    datetime(2025, 12, 15, 12, tzinfo=UTC),
    datetime(2026, 1, 20, 12, tzinfo=UTC),
    datetime(2026, 2, 15, 12, tzinfo=UTC),
    datetime(2026, 4, 15, 12, tzinfo=UTC),
]


def _counted(database_url: str) -> int:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    # Every valid event's (shop, id), planned shop or not (totals keep
                    # planned shops only).
                    sa.text("SELECT count(*) FROM seen_events")
                ).scalar_one()
            )
    except sa.exc.OperationalError:
        return -1
    finally:
        engine.dispose()


def test_progress_matches_independent_computation(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path)
    # The example measures its clients' baseline from history (tests/integration/
    # test_measured_baselines.py covers that); here it is typed, as 200, to check the formulas.
    salon_plan = tmp_path / "salon.yaml"
    salon_plan.write_text(
        (EXAMPLES / "salon.yaml").read_text().replace("baseline: {from: history}", "baseline: 200")
    )
    applied = okrflow(env, "apply", str(salon_plan))
    assert applied.returncode == 0, applied.stderr
    assert "10 change(s), applied as revision 1" in applied.stdout  # 8 + 2 KPIs

    salon = salon_stream()
    studio, late = studio_stream()
    with running(env, "worker", log=tmp_path / "worker.log") as worker:
        assert okrflow(env, "emit", str(salon.write(tmp_path / "salon.jsonl"))).returncode == 0
        wait_for(
            lambda: _counted(database_url),
            lambda n: n == len(salon.unique),
            90,
            "the salon stream counted",
        )
        # The TikTok plan reaches the running worker without a restart.
        applied = okrflow(env, "apply", str(EXAMPLES / "tiktok.yaml"))
        assert applied.returncode == 0, applied.stderr
        assert okrflow(env, "emit", str(studio.write(tmp_path / "studio.jsonl"))).returncode == 0
        total = len(salon.unique) + len(studio.unique)
        wait_for(
            lambda: _counted(database_url), lambda n: n == total, 90, "the studio stream counted"
        )
        assert okrflow(env, "emit", str(late.write(tmp_path / "late.jsonl"))).returncode == 0
        total += len(late.unique)
        wait_for(
            lambda: _counted(database_url), lambda n: n == total, 90, "the late events counted"
        )
        assert worker.poll() is None

    again = okrflow(env, "apply", str(salon_plan), str(EXAMPLES / "tiktok.yaml"))
    assert again.returncode == 0
    assert again.stdout.count("no changes") == 2

    for at in INSTANTS:
        shown = okrflow(env, "progress", "--at", at.isoformat(), "--format", "json")
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        actual: dict[tuple[str, str, str | None], tuple[float, float, str]] = {}
        for shop in report["shops"]:
            for o in shop["objectives"]:
                actual[shop["shop"], o["key"], None] = (o["progress"], o["expected"], o["status"])
                for kr in o["key_results"]:
                    actual[shop["shop"], o["key"], kr["key"]] = (
                        kr["value"],
                        kr["expected"],
                        kr["status"],
                    )
        expected = expected_report(at)
        assert actual.keys() == expected.keys()
        for key, (value, e, st) in expected.items():
            got = actual[key]
            assert got[0] == pytest.approx(value, abs=1e-6), (at, key, "value/progress")
            assert got[1] == pytest.approx(e, abs=1e-6), (at, key, "expected")
            assert got[2] == st, (at, key, "status")
