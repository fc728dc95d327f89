"""KPIs end to end, on both databases with the real broker: a plan with a count over 7 days,
a count_distinct over 30 days and a ratio over 1 day with a healthy band; events over six
weeks (some exactly at local midnights) counted by the worker; `progress --format json`
(now and `--as-of`) and `history` equal a computation made here from the events alone. A
KPI added mid-stream gets a backfill job: until the backfill runs it holds only the events
after its cut."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.services import wait_for

TZ = "Europe/Rome"
ROME = ZoneInfo(TZ)
SHOP = "salone-bella"
NOW = datetime.now(UTC)
TODAY = NOW.astimezone(ROME).date()
START = TODAY - timedelta(days=45)
KPIS = """\
kpis:
  - key: orders-week
    title: Orders in 7 days
    metric: {event: order.placed, aggregate: count}
    window: 7d
  - key: clients-month
    metric: {event: order.placed, aggregate: count_distinct, field: data.customer_id}
    window: 30d
    healthy: {above: 5}
  - key: refund-rate
    title: Refunds a day
    metric:
      ratio:
        numerator: {event: order.refunded, aggregate: count}
        denominator: {event: order.placed, aggregate: count}
    window: 1d
    healthy: {below: 0.5}
"""
ADDED = """\
  - key: revenue-week
    metric: {event: order.placed, aggregate: sum, field: data.total}
    window: 7d
"""
PLAN = f"""\
shop: {SHOP}
timezone: {TZ}
objectives:
  - key: autumn
    title: Autumn
    owner: sales
    period: {{start: {START}, end: {TODAY + timedelta(days=30)}}}
    key_results:
      - {{key: orders, metric: {{event: order.placed, aggregate: count}}, target: 400}}
"""

Order = tuple[datetime, str, float]  # time, customer, total


class Events:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.orders: list[Order] = []
        self.refunds: list[datetime] = []

    def order(self, at: datetime, customer: str, total: float) -> None:
        self._add("order.placed", at, {"order_id": f"o{len(self.lines)}",
                  "customer_id": customer, "total": total, "currency": "EUR"})  # fmt: skip
        self.orders.append((at, customer, total))

    def refund(self, at: datetime) -> None:
        self._add("order.refunded", at, {"order_id": f"r{len(self.lines)}", "amount": 5,
                                         "currency": "EUR"})  # fmt: skip
        self.refunds.append(at)

    def _add(self, event_type: str, at: datetime, data: dict[str, Any]) -> None:
        self.lines.append(json.dumps(cloud_event(
            f"e-{len(self.lines)}", shop=SHOP, event_type=event_type,
            time=at.astimezone(ROME).isoformat(), data=data,
        )))  # fmt: skip

    def write(self, path: Path, first: int = 0) -> Path:
        path.write_text("\n".join(self.lines[first:]) + "\n")
        return path


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), ROME).astimezone(UTC)


def _stream(events: Events, rng: random.Random, n: int, first: datetime, last: datetime) -> None:
    """`n` events at random seconds in [first, last): 80% orders, 20% refunds; plus an order
    exactly at each of three local midnights and one second before each."""
    span = int((last - first).total_seconds())
    for i in range(n):
        at = first + timedelta(seconds=rng.randrange(span))
        if i % 5 == 4:
            events.refund(at)
        else:
            events.order(at, f"c{rng.randrange(40)}", float(rng.choice([10, 25, 40])))
    for back in (1, 8, 30):
        midnight = _midnight(TODAY - timedelta(days=back))
        if first <= midnight - timedelta(seconds=1) and midnight < last:
            events.order(midnight, f"m{back}", 7.0)
            events.order(midnight - timedelta(seconds=1), f"m{back}", 9.0)


# --- the expected figures, computed here from the events -----------------------------------


def _inside(at: datetime, day: date, days: int) -> bool:
    """In the `days` local days ending on `day`: compared as instants."""
    return _midnight(day - timedelta(days=days - 1)) <= at < _midnight(day + timedelta(days=1))


def expected(orders: list[Order], refunds: list[datetime], day: date) -> dict[str, Any]:
    """Each KPI's (value, healthy) for the window ending on local day `day`."""
    week = [o for o in orders if _inside(o[0], day, 7)]
    month = {c for at, c, _ in orders if _inside(at, day, 30)}
    placed = sum(1 for o in orders if _inside(o[0], day, 1))
    refunded = sum(1 for at in refunds if _inside(at, day, 1))
    rate = refunded / placed if placed else None
    return {
        "orders-week": (len(week), None),
        "clients-month": (len(month), len(month) > 5),
        "refund-rate": (rate, None if rate is None else rate < 0.5),
        "revenue-week": (sum(t for _, _, t in week), None),
    }


def _shown(kpis: list[dict[str, Any]]) -> dict[str, Any]:
    return {k["key"]: (k["value"], k["healthy"]) for k in kpis}


def _same(got: dict[str, Any], want: dict[str, Any], where: object) -> None:
    assert got.keys() <= want.keys(), where
    for key, (value, healthy) in got.items():
        w_value, w_healthy = want[key]
        assert (value is None) == (w_value is None), (where, key, value, w_value)
        if value is not None:
            assert value == pytest.approx(w_value, abs=1e-9), (where, key)
        assert healthy == w_healthy, (where, key)


def _db(database_url: str) -> sa.Engine:
    return sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))


def _counted(database_url: str) -> int:
    engine = _db(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM seen_events")).scalar_one())
    except sa.exc.OperationalError:
        return -1
    finally:
        engine.dispose()


def _progress(env: dict[str, str], *args: str) -> dict[str, Any]:
    shown = okrflow(env, "progress", "--format", "json", *args)
    assert shown.returncode == 0, shown.stderr
    (shop,) = json.loads(shown.stdout)["shops"]
    return dict(shop)


def test_kpis_count_rolling_windows(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path)
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN + KPIS)
    applied = okrflow(env, "apply", str(plan))
    assert applied.returncode == 0, applied.stderr
    assert "added    kpi orders-week" in applied.stdout

    rng = random.Random(5)
    events = Events()
    cut = NOW - timedelta(minutes=5)  # nothing after it: "today" has events, none from later
    _stream(events, rng, 400, _midnight(START), cut)
    first_b = len(events.lines)
    with running(env, "worker", log=tmp_path / "worker.log") as worker:
        assert okrflow(env, "emit", str(events.write(tmp_path / "a.jsonl"))).returncode == 0
        wait_for(lambda: _counted(database_url), lambda n: n == first_b, 90, "the stream")

        # A KPI added mid-stream: a backfill job, marked pending; counted from the cut on.
        plan.write_text(PLAN + KPIS + ADDED)
        added = okrflow(env, "apply", str(plan))
        assert added.returncode == 0, added.stderr
        assert "added    kpi revenue-week" in added.stdout
        assert "1 KPI(s) new or re-metered" in added.stdout
        orders_after_cut = len(events.orders)
        for i in range(12):  # later events, all inside today's and this week's windows
            events.order(cut + timedelta(seconds=10 * i), f"late{i % 3}", 100.0)
        events.refund(cut + timedelta(seconds=7))
        assert okrflow(env, "emit", str(events.write(tmp_path / "b.jsonl", first_b))).returncode == 0  # fmt: skip
        wait_for(lambda: _counted(database_url), lambda n: n == len(events.lines), 90, "later")
        assert worker.poll() is None

    engine = _db(database_url)
    with engine.connect() as conn:
        jobs = conn.execute(sa.text(
            "SELECT j.state, k.key FROM backfill_jobs j JOIN key_results k "
            "ON k.backfill_job_id = j.id WHERE k.kind = 'kpi' AND k.retired_at IS NULL"
        )).all()  # fmt: skip
        kinds: dict[str, str] = {
            key: kind for key, kind in conn.execute(
                sa.text("SELECT key, kind FROM key_results WHERE retired_at IS NULL"))
        }  # fmt: skip
    engine.dispose()
    assert [tuple(j) for j in jobs] == [("pending", "revenue-week")]
    assert kinds == {"orders": "kr", "orders-week": "kpi", "clients-month": "kpi",
                     "refund-rate": "kpi", "revenue-week": "kpi"}  # fmt: skip

    # progress now: the windows end today; the added KPI holds only what followed its cut.
    for _attempt in range(2):  # once more if a local midnight passed meanwhile
        today = datetime.now(ROME).date()
        shop = _progress(env)
        if datetime.now(ROME).date() == today:
            break
    want = expected(events.orders, events.refunds, today)
    after_cut = expected(events.orders[orders_after_cut:], [], today)
    want["revenue-week"] = after_cut["revenue-week"]
    assert [k["key"] for k in shop["kpis"]] == [
        "orders-week",
        "clients-month",
        "refund-rate",
        "revenue-week",
    ]
    _same(_shown(shop["kpis"]), want, "now")
    by_key = {k["key"]: k for k in shop["kpis"]}
    assert by_key["revenue-week"]["backfill"] == "pending"
    assert by_key["orders-week"]["backfill"] is None
    assert by_key["clients-month"]["band"] == "above 5"
    assert by_key["refund-rate"]["window"] == "1d"
    assert by_key["orders-week"]["has_value"] is True
    assert want["orders-week"][0] > 0 and want["clients-month"][0] > 0  # the test means something

    # --as-of at three days: windows ending then (the backfill pending, revenue left out).
    for day in (TODAY - timedelta(days=30), TODAY - timedelta(days=8), TODAY - timedelta(days=1)):
        shop = _progress(env, "--as-of", day.isoformat())
        got = {k: v for k, v in _shown(shop["kpis"]).items() if k != "revenue-week"}
        _same(got, expected(events.orders, events.refunds, day), day)

    # history: each day's window, from --from to --to; the CSV has a `kpi` column.
    first = TODAY - timedelta(days=35)
    shown = okrflow(env, "history", "--shop", SHOP, "--from", first.isoformat(),
                    "--to", TODAY.isoformat(), "--format", "json")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)
    kpis = {k["key"]: k for k in history["kpis"]}
    assert kpis.keys() == {"orders-week", "clients-month", "refund-rate", "revenue-week"}
    for key in ("orders-week", "clients-month", "refund-rate"):
        days = kpis[key]["days"]
        assert [d["day"] for d in days] == [
            (first + timedelta(days=i)).isoformat() for i in range(36)
        ]
        for d in days:
            day = date.fromisoformat(d["day"])
            want_day = expected(events.orders, events.refunds, day)
            _same({key: (d["value"], d["healthy"])}, want_day, (key, day))
    shown = okrflow(env, "history", "--shop", SHOP, "--from", first.isoformat(),
                    "--to", TODAY.isoformat(), "--format", "csv")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    rows = [r for r in csv.DictReader(io.StringIO(shown.stdout)) if r["kpi"] == "orders-week"]
    assert {r["day"]: float(r["value"]) for r in rows} == {
        d["day"]: d["value"] for d in kpis["orders-week"]["days"]
    }
    table = okrflow(env, "progress")
    assert table.returncode == 0 and "clients-month" in table.stdout, table.stderr
