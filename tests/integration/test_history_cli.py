"""`okrflow progress --as-of` and `okrflow history` end to end, on both databases with the
real broker: a few hundred events over several local days (some arriving late), counted by
the worker; `progress --as-of` at three dates equals a computation made here from the
events alone, and `history` equals `progress --as-of` on every day, forecasts included."""

from __future__ import annotations

import csv
import io
import json
import logging
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from okrflow.cli import main as okrflow_main
from tests.factories import cloud_event
from tests.integration.processes import okrflow, pipeline_env, running
from tests.services import wait_for

TZ = "Europe/Rome"
ROME = ZoneInfo(TZ)
SHOP = "salone-bella"
TODAY = datetime.now(ROME).date()
START, END = TODAY - timedelta(days=40), TODAY + timedelta(days=20)
PLAN = f"""\
shop: {SHOP}
timezone: {TZ}
objectives:
  - key: autumn
    title: Autumn
    owner: sales
    period: {{start: {START}, end: {END}}}
    key_results:
      - {{key: orders, metric: {{event: order.placed, aggregate: count}}, target: 400}}
      - {{key: revenue, metric: {{event: order.placed, aggregate: sum, field: data.total}},
          baseline: 1000, target: 30000}}
      - {{key: clients, metric: {{event: order.placed, aggregate: count_distinct,
          field: data.customer_id}}, target: 60}}
      - {{key: followers, metric: {{event: social.followers.changed, aggregate: latest,
          field: data.followers}}, baseline: 100, target: 400}}
      - {{key: top-order, metric: {{event: order.placed, aggregate: max, field: data.total}},
          target: 500}}
      - key: refund-rate
        metric: {{ratio: {{numerator: {{event: order.refunded, aggregate: count}},
                          denominator: {{event: order.placed, aggregate: count}}}}}}
        maintain: {{below: 0.15}}
      - key: daily-posts
        metric: {{event: social.post.published, aggregate: count}}
        cadence: {{every: day, at_least: 2}}
"""
KEYS = ["orders", "revenue", "clients", "followers", "top-order", "refund-rate", "daily-posts"]


class Events:
    """The stream, kept as plain tuples for the independent computation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.orders: list[tuple[datetime, float, str]] = []
        self.refunds: list[datetime] = []
        self.followers: list[tuple[datetime, float]] = []
        self.posts: list[datetime] = []

    def add(self, event_type: str, at: datetime, data: dict[str, Any]) -> None:
        self.lines.append(json.dumps(cloud_event(
            f"e-{len(self.lines)}-{at.timestamp():.0f}", shop=SHOP, event_type=event_type,
            time=at.astimezone(ROME).isoformat(), data=data,
        )))  # fmt: skip
        if event_type == "order.placed":
            self.orders.append((at, float(data["total"]), data["customer_id"]))
        elif event_type == "order.refunded":
            self.refunds.append(at)
        elif event_type == "social.followers.changed":
            self.followers.append((at, float(data["followers"])))
        else:
            self.posts.append(at)

    def write(self, path: Path, first: int = 0) -> Path:
        path.write_text("\n".join(self.lines[first:]) + "\n")
        return path


def _stream(rng: random.Random) -> Events:
    """About 300 events on the period's days up to yesterday, at distinct minutes (no ties
    for `latest`), in random order; the last few are emitted later, back-dated (late)."""
    events = Events()
    first = datetime.combine(START, time(0), ROME).astimezone(UTC)
    last = datetime.combine(TODAY, time(0), ROME).astimezone(UTC)
    minutes = rng.sample(range(int((last - first).total_seconds() // 60)), 300)
    for n, m in enumerate(minutes):
        at = first + timedelta(minutes=m)
        kind = n % 10
        if kind < 5:
            total = rng.choice([15, 40, 75.5, 120, 300])
            data = {"order_id": f"o{n}", "customer_id": f"c{rng.randrange(45)}",
                    "total": total, "currency": "EUR"}  # fmt: skip
            events.add("order.placed", at, data)
        elif kind == 5:
            events.add("order.refunded", at, {"order_id": f"o{n}", "amount": 5, "currency": "EUR"})
        elif kind == 6:
            events.add("social.followers.changed", at,
                       {"platform": "tiktok", "followers": 100 + rng.randrange(300)})  # fmt: skip
        else:
            events.add("social.post.published", at, {"platform": "tiktok", "post_id": f"p{n}"})
    return events


def _late(events: Events) -> int:
    """Back-dated events, emitted after the rest was counted: an order by a client first
    seen later (its day moves earlier) and an old followers count (not the latest)."""
    first = len(events.lines)
    at = datetime.combine(START + timedelta(days=2), time(9, 30, 30), ROME).astimezone(UTC)
    first_seen: dict[str, datetime] = {}
    for at, _, client in events.orders:
        first_seen[client] = min(at, first_seen.get(client, at))
    late_client = max(first_seen, key=lambda c: first_seen[c])
    events.add("order.placed", at, {"order_id": "late", "customer_id": late_client,
                                    "total": 999, "currency": "EUR"})  # fmt: skip
    events.add("social.followers.changed", at, {"platform": "tiktok", "followers": 5})
    return first


# --- the expected figures, computed here from the events -----------------------------------


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), ROME).astimezone(UTC)


def _fraction(at: datetime, a: datetime, b: datetime) -> float:
    return min(1.0, max(0.0, (at - a).total_seconds() / (b - a).total_seconds()))


def _status(at: datetime, p: float, e: float) -> str:
    if at < _midnight(START):
        return "not_started"
    if p >= 1:
        return "achieved"
    if at >= _midnight(END + timedelta(days=1)):
        return "missed"
    gap = e - min(1.0, max(0.0, p))
    return "on_track" if gap <= 0.10 else "at_risk" if gap <= 0.25 else "off_track"


def expected_as_of(events: Events, day: date) -> dict[str | None, tuple[float, float, str]]:
    """Key result (None: the objective) -> (value, or the objective's progress; expected;
    status) at the end of local `day`."""
    end = _midnight(day + timedelta(days=1))
    start, after = _midnight(START), _midnight(END + timedelta(days=1))
    linear = _fraction(end, start, after)
    orders = [o for o in events.orders if o[0] < end]
    refunds = [r for r in events.refunds if r < end]
    followers = sorted(f for f in events.followers if f[0] < end)
    out: dict[str | None, tuple[float, float, str]] = {}
    parts: list[float] = []

    def target(key: str, value: float, baseline: float, goal: float) -> None:
        p = (value - baseline) / (goal - baseline)
        out[key] = (value, linear, _status(end, p, linear))
        parts.append(min(1.0, max(0.0, p)))

    target("orders", len(orders), 0, 400)
    target("revenue", 1000 + sum(o[1] for o in orders), 1000, 30000)
    target("clients", len({o[2] for o in orders}), 0, 60)
    target("followers", followers[-1][1] if followers else 100, 100, 400)
    target("top-order", max((o[1] for o in orders), default=0.0), 0, 500)
    rate = len(refunds) / len(orders) if orders else None
    holds = rate is None or rate < 0.15
    if end < start:
        rate_status = "not_started"
    elif end >= after:
        rate_status = "achieved" if holds else "missed"
    else:
        rate_status = "on_track" if holds else "off_track"
    out["refund-rate"] = (rate if rate is not None else 0.0, linear, rate_status)
    parts.append(1.0 if holds else 0.0)
    slots = (END - START).days + 1
    per_day: dict[date, int] = {}
    for at in events.posts:
        if at < end:
            per_day[at.astimezone(ROME).date()] = per_day.get(at.astimezone(ROME).date(), 0) + 1
    credited = sum(min(2, n) for n in per_day.values())
    ended = max(0, min(slots, (day - START).days + 1))
    p = credited / (2 * slots)
    out["daily-posts"] = (credited, ended / slots, _status(end, p, ended / slots))
    parts.append(min(1.0, p))
    progress = sum(parts) / len(parts)
    out[None] = (progress, linear, _status(end, progress, linear))
    return out


# --- running it ------------------------------------------------------------------------------


def _counted(database_url: str) -> int:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM seen_events")).scalar_one())
    except sa.exc.OperationalError:
        return -1
    finally:
        engine.dispose()


def _in_process(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """`okrflow ARGS` run in this process (the same entry point, without a new interpreter
    per call): exit code, stdout, stderr."""

    def run(*args: str) -> tuple[int, str, str]:
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        capsys.readouterr()
        try:
            code = okrflow_main(list(args))
        finally:
            # main() points the root logger at this test's captured stderr: put it back.
            root.handlers[:], root.level = handlers, level
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _figures(entry: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a progress or history entry: what a day of `history` shows."""
    skip = ("key", "title", "day", "owner", "level", "parent", "period", "key_results")
    return {k: v for k, v in entry.items() if k not in skip}


def _moving(figures: dict[str, Any]) -> dict[str, Any]:
    """`figures` with a forecast's numbers compared within 1e-4: made at another instant."""
    forecast = figures.get("forecast")
    if not forecast:
        return figures
    near = {k: v if k in ("basis_days", "method") else pytest.approx(v, rel=1e-4, abs=1e-4)
            for k, v in forecast.items()}  # fmt: skip
    return {**figures, "forecast": near}


def test_as_of_and_history_match_the_events(
    kafka_bootstrap: str, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path)
    (tmp_path / "okrs.yaml").write_text(PLAN)
    applied = okrflow(env, "apply", str(tmp_path / "okrs.yaml"))
    assert applied.returncode == 0, applied.stderr
    events = _stream(random.Random(7))
    with running(env, "worker", log=tmp_path / "worker.log") as worker:
        assert okrflow(env, "emit", str(events.write(tmp_path / "a.jsonl"))).returncode == 0
        wait_for(lambda: _counted(database_url), lambda n: n == 300, 90, "the stream counted")
        first_late = _late(events)
        assert okrflow(env, "emit", str(events.write(tmp_path / "b.jsonl", first_late))).returncode == 0  # fmt: skip
        wait_for(lambda: _counted(database_url), lambda n: n == 302, 90, "the late events")
        assert worker.poll() is None

    # progress --as-of, the real command, at three dates: the first day, the autumn DST day
    # (when it is in the period), the day before yesterday.
    dst = date(TODAY.year, 10, 25)
    dates = [START, dst if START < dst < TODAY else START + timedelta(days=20),
             TODAY - timedelta(days=2)]  # fmt: skip
    for day in dates:
        shown = okrflow(env, "progress", "--as-of", day.isoformat(), "--format", "json")
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        assert report["as_of"] == day.isoformat()
        (shop,) = report["shops"]
        assert shop["as_of"] == {"date": day.isoformat(),
                                 "instant": _midnight(day + timedelta(days=1)).isoformat()}  # fmt: skip
        (objective,) = shop["objectives"]
        expected = expected_as_of(events, day)
        got = {kr["key"]: (kr["value"], kr["expected"], kr["status"])
               for kr in objective["key_results"]}  # fmt: skip
        got[None] = (objective["progress"], objective["expected"], objective["status"])
        assert got.keys() == expected.keys()
        for key, (value, e, status) in expected.items():
            assert got[key][0] == pytest.approx(value, abs=1e-6), (day, key, "value")
            assert got[key][1] == pytest.approx(e, abs=1e-6), (day, key, "expected")
            assert got[key][2] == status, (day, key, "status")

    run = _in_process(capsys)
    url = ["--database-url", database_url]
    code, out, err = run(*url, "history", "--shop", SHOP, "--format", "json")
    assert code == 0, err
    history = json.loads(out)
    (objective,) = history["objectives"]
    days = [d["day"] for d in objective["days"]]
    today = date.fromisoformat(history["today"])
    assert days[0] == START.isoformat() and days[-1] == today.isoformat()
    assert len(days) == (today - START).days + 1
    assert [kr["key"] for kr in objective["key_results"]] == KEYS
    for i, day_text in enumerate(days):
        code, out, err = run(*url, "progress", "--as-of", day_text, "--format", "json")
        assert code == 0, err
        (then,) = json.loads(out)["shops"][0]["objectives"]
        # Today is not over: both forecast it at their own now, a moment apart.
        same = _moving if day_text == today.isoformat() else (lambda figures: figures)
        assert _figures(objective["days"][i]) == same(_figures(then)), day_text
        for kr, kr_then in zip(objective["key_results"], then["key_results"], strict=True):
            assert kr["days"][i]["day"] == day_text
            assert _figures(kr["days"][i]) == same(_figures(kr_then)), (day_text, kr["key"])

    # Each day carries the forecast made then (compared with `progress --as-of` above): from
    # the 7th complete day on, standing on every day of the period up to it.
    last = {kr["key"]: kr["days"][-1] for kr in objective["key_results"]}
    for key in ("orders", "revenue", "clients", "daily-posts"):
        assert last[key]["forecast"]["basis_days"] == len(days) - 1, key  # today: not over
    assert objective["key_results"][0]["days"][5]["forecast"] is None
    assert last["top-order"]["forecast_reason"] == "max levels are not forecast"
    assert "maintain" in last["refund-rate"]["forecast_reason"]

    code, out, err = run(*url, "history", "--shop", SHOP, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(days) * (1 + len(KEYS))
    revenue = {r["day"]: float(r["value"]) for r in rows if r["key_result"] == "revenue"}
    assert revenue == {d["day"]: d["value"] for d in objective["key_results"][1]["days"]}
    chances = {r["day"]: r["probability"] for r in rows if r["key_result"] == "orders"}
    assert chances == {
        d["day"]: "" if d["forecast"] is None else str(d["forecast"]["probability"])
        for d in objective["key_results"][0]["days"]
    }

    code, out, err = run(*url, "history", "--shop", SHOP, "--to", dates[0].isoformat())
    assert (code, out.count(dates[0].isoformat())) == (0, 1), err  # the table, one day
    code, out, err = run(*url, "progress", "--as-of", dates[1].isoformat())
    assert code == 0 and f"as of the end of {dates[1]}" in out, err

    # Filters and an operator's mistakes: one line, the documented exit codes.
    code, out, err = run(*url, "history", "--shop", SHOP, "--key-result", "clients",
                         "--from", dates[1].isoformat(), "--to", dates[2].isoformat(),
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    (only,) = json.loads(out)["objectives"][0]["key_results"]
    assert [d["day"] for d in only["days"]] == [
        (dates[1] + timedelta(days=i)).isoformat() for i in range((dates[2] - dates[1]).days + 1)
    ]
    for argv, exit_code in [
        (["history", "--shop", "nobody"], 10),
        (["history", "--shop", SHOP, "--objective", "spring"], 10),
        (["history", "--shop", SHOP, "--key-result", "nope"], 10),
        (["history", "--shop", SHOP, "--from", "2026-13-01"], 2),
        (["progress", "--as-of", "yesterday"], 2),
    ]:
        code, out, err = run(*url, *argv)
        assert (code, err.count("\n")) == (exit_code, 1), (argv, err)
    with pytest.raises(SystemExit) as both:  # argparse refuses the pair before main() runs
        okrflow_main([*url, "progress", "--at", "2026-01-01T00:00:00Z", "--as-of", "2026-01-01"])
    assert both.value.code == 2
