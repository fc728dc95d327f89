"""Baselines measured from data end to end, on both databases with the real broker: a plan
revised mid-period adds key results with `baseline: {from: history}` and
`{from: previous_period}` and a relative target ("+15%"); `okrflow backfill --wait` scans the
topic below the cut, the worker freezes the baselines once it has passed the scan's freeze
offsets, and `progress` then equals a computation made here from the events alone. An event
of the baseline windows emitted after the freeze changes nothing."""

from __future__ import annotations

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
TODAY = datetime.now(ROME).date()
START, END = TODAY - timedelta(days=5), TODAY + timedelta(days=20)
LENGTH = (END - START).days + 1
HEAD = f"""\
shop: {SHOP}
timezone: {TZ}
objectives:
  - key: grow
    title: Grow
    owner: sales
    period: {{start: {START}, end: {END}}}
    key_results:
      - {{key: plain, metric: {{event: order.placed, aggregate: count}}, target: 1000}}
"""
MEASURED = {  # key: (aggregate, from)
    "hist-orders": ("count", "history"),
    "hist-clients": ("count_distinct", "history"),
    "prev-orders": ("count", "previous_period"),
    "prev-clients": ("count_distinct", "previous_period"),
}


def _revised() -> str:
    text = HEAD
    for key, (aggregate, source) in MEASURED.items():
        field = ", field: data.customer_id" if aggregate == "count_distinct" else ""
        text += (
            f"      - {{key: {key}, metric: {{event: order.placed, aggregate: {aggregate}"
            f'{field}}}, baseline: {{from: {source}}}, target: "+15%"}}\n'
        )
    return text


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), ROME).astimezone(UTC)


S, E = _midnight(START), _midnight(END + timedelta(days=1))
PREVIOUS = _midnight(START - timedelta(days=LENGTH))


class Orders:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.seen: list[tuple[datetime, str]] = []

    def add(self, at: datetime, client: str) -> None:
        n = len(self.lines)
        data = {"order_id": f"o{n}", "customer_id": client, "total": 10, "currency": "EUR"}
        self.lines.append(json.dumps(cloud_event(
            f"o-{n}", shop=SHOP, event_type="order.placed", time=at.astimezone(ROME).isoformat(),
            data=data,
        )))  # fmt: skip
        self.seen.append((at, client))

    def write(self, path: Path, first: int = 0) -> Path:
        path.write_text("\n".join(self.lines[first:]) + "\n")
        return path


def _orders(rng: random.Random) -> Orders:
    """240 orders from 70 days before the period to yesterday, out of time order."""
    orders = Orders()
    first, last = _midnight(START - timedelta(days=70)), _midnight(TODAY)
    for m in rng.sample(range(int((last - first).total_seconds() // 60)), 240):
        orders.add(first + timedelta(minutes=m), f"c{rng.randrange(80)}")
    return orders


def _expected(seen: list[tuple[datetime, str]]) -> dict[str, dict[str, float]]:
    """B, V, target and progress of each measured key result (docs/formulas.md)."""

    def count(lo: datetime | None, hi: datetime) -> float:
        return float(sum(1 for at, _ in seen if (lo is None or at >= lo) and at < hi))

    def distinct(lo: datetime | None, hi: datetime) -> float:
        return float(len({c for at, c in seen if (lo is None or at >= lo) and at < hi}))

    out = {}
    for key, (aggregate, source) in MEASURED.items():
        measure = count if aggregate == "count" else distinct
        lo = None if source == "history" else PREVIOUS
        baseline = measure(lo, S)
        target = round(baseline * 1.15, 9)
        if source == "history":  # history and period together (a client once)
            value = measure(None, E)
            progress = (value - baseline) / (target - baseline)
        else:  # period totals compared
            value = measure(S, E)
            progress = value / target
        out[key] = {"baseline": baseline, "value": value, "target": target, "progress": progress}
    return out


def _db(database_url: str, sql: str) -> list[Any]:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).all())
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()


def _counted(database_url: str) -> int:
    rows = _db(database_url, "SELECT count(*) FROM seen_events")
    return int(rows[0][0]) if rows else -1


def _measured(database_url: str) -> int:
    rows = _db(database_url, "SELECT count(*) FROM key_results WHERE baseline_state = 'measured'")
    return int(rows[0][0]) if rows else -1


def _shown(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    shown = okrflow(env, "progress", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    (objective,) = json.loads(shown.stdout)["shops"][0]["objectives"]
    return {kr["key"]: kr for kr in objective["key_results"]}


def test_baselines_from_history_and_the_previous_period(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path)
    (tmp_path / "v1.yaml").write_text(HEAD)
    assert okrflow(env, "apply", str(tmp_path / "v1.yaml")).returncode == 0
    orders = _orders(random.Random(11))
    with running(env, "worker", log=tmp_path / "worker.log") as worker:
        assert okrflow(env, "emit", str(orders.write(tmp_path / "a.jsonl"))).returncode == 0
        wait_for(lambda: _counted(database_url), lambda n: n == 240, 90, "the orders counted")
        # Revised mid-period: the measured key results get a backfill job and wait.
        (tmp_path / "v2.yaml").write_text(_revised())
        applied = okrflow(env, "apply", str(tmp_path / "v2.yaml"))
        assert applied.returncode == 0, applied.stderr
        waiting = _shown(env)
        for key in MEASURED:
            assert waiting[key]["baseline"] is None and waiting[key]["status"] is None, key
            assert waiting[key]["backfill"] == "pending", key
        backfill = okrflow(env, "backfill", "--wait", timeout=300)
        assert backfill.returncode == 0, backfill.stdout + backfill.stderr
        # The worker freezes them (every minute) once it has passed the scan's log ends.
        wait_for(lambda: _measured(database_url), lambda n: n == len(MEASURED), 180,
                 "the baselines frozen")  # fmt: skip
        expected = _expected(orders.seen)
        frozen = _shown(env)
        for key, want in expected.items():
            for name, value in want.items():
                assert frozen[key][name] == pytest.approx(value, abs=1e-6), (key, name)
            assert frozen[key]["status"] is not None and frozen[key]["backfill"] == "done", key
        changes = _db(database_url, "SELECT changes FROM plan_revisions ORDER BY id DESC")
        lines = {c["what"] for c in json.loads(changes[0][0])}
        assert lines == {
            f"key result grow/{key}: baseline {expected[key]['baseline']:g} (from {source})"
            for key, (_, source) in MEASURED.items()
        }
        # A late order of both baseline windows, by a new client: nothing changes.
        first_late = len(orders.lines)
        orders.add(S - timedelta(days=2, hours=3), "late-client")
        late = okrflow(env, "emit", str(orders.write(tmp_path / "b.jsonl", first_late)))
        assert late.returncode == 0
        wait_for(lambda: _counted(database_url), lambda n: n == 241, 90, "the late order")
        assert worker.poll() is None
    after = _shown(env)
    for key in MEASURED:
        assert {k: after[key][k] for k in expected[key]} == {
            k: frozen[key][k] for k in expected[key]
        }, key


def test_baselines_wait_for_the_log_when_nothing_was_applied_yet(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """A new install over a topic that already holds the history: the plan is applied before
    the worker has counted anything (no cut). The baselines must not be frozen at once (at
    0): `okrflow backfill` records where the log ends, and the worker freezes them once it has
    counted that far."""
    env = pipeline_env(kafka_bootstrap, database_url, tmp_path)
    orders = _orders(random.Random(12))
    assert okrflow(env, "emit", str(orders.write(tmp_path / "a.jsonl"))).returncode == 0
    (tmp_path / "v2.yaml").write_text(_revised())
    applied = okrflow(env, "apply", str(tmp_path / "v2.yaml"))
    assert applied.returncode == 0, applied.stderr
    assert "okrflow backfill" in applied.stdout
    assert _measured(database_url) == 0
    waiting = _shown(env)
    for key in MEASURED:
        assert waiting[key]["baseline"] is None and waiting[key]["backfill"] == "pending", key
    with running(env, "worker", log=tmp_path / "worker.log") as worker:
        backfill = okrflow(env, "backfill", "--wait", timeout=300)
        assert backfill.returncode == 0, backfill.stdout + backfill.stderr
        wait_for(lambda: _measured(database_url), lambda n: n == len(MEASURED), 180,
                 "the baselines frozen")  # fmt: skip
        assert _counted(database_url) == 240
        assert worker.poll() is None
    frozen = _shown(env)
    for key, want in _expected(orders.seen).items():
        for name, value in want.items():
            assert frozen[key][name] == pytest.approx(value, abs=1e-6), (key, name)
        assert frozen[key]["backfill"] == "done", key
