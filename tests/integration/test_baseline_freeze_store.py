"""Baselines measured from data, on real SQLite and PostgreSQL, through the batch transaction
and the freeze (no broker: batches are applied directly): `from: history` and
`from: previous_period` with relative targets, for count, count_distinct, max and latest,
against a computation done here from the events alone; the freeze waits for the window's end
and for the backfill job's freeze offsets; an event of the window arriving after the freeze
changes nothing."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select, update

from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.plans.apply import apply_files, apply_parsed, parse_files
from okrflow.plans.freeze import freeze_due_baselines
from okrflow.reports.progress import progress_report
from okrflow.store.backfill import add_uncut_partitions
from okrflow.store.engine import make_engine
from okrflow.store.plan_clock import plans_revision
from okrflow.store.schema import ensure_schema
from okrflow.store.tables import backfill_jobs, backfill_partitions, key_results, plan_revisions
from tests.factories import decode_batch_of

TZ = "Europe/Rome"
SHOP = "salone-bella"
START, END = date(2026, 3, 20), date(2026, 3, 29)  # ten local days; the DST change inside
LENGTH = (END - START).days + 1
TOPIC = "events"
KEY_RESULTS = {  # key: (aggregate, from)
    "hist_n": ("count", "history"),
    "hist_clients": ("count_distinct", "history"),
    "hist_top": ("max", "history"),
    "prev_n": ("count", "previous_period"),
    "prev_clients": ("count_distinct", "previous_period"),
    "prev_last": ("latest", "previous_period"),
}


def _plan() -> str:
    text = f"""\
shop: {SHOP}
timezone: {TZ}
objectives:
  - key: spring
    title: Spring
    owner: sales
    period: {{start: {START}, end: {END}}}
    key_results:
      - {{key: plain, metric: {{event: shop.sale, aggregate: count}}, target: 1000}}
"""
    for key, (aggregate, source) in KEY_RESULTS.items():
        field = {"count": "", "count_distinct": ", field: data.client"}.get(
            aggregate, ", field: data.amount"
        )
        text += (
            f"      - {{key: {key}, metric: {{event: shop.sale, aggregate: {aggregate}{field}}}, "
            f'baseline: {{from: {source}}}, target: "+15%"}}\n'
        )
    return text


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), ZoneInfo(TZ)).astimezone(UTC)


S = _midnight(START)
E = _midnight(END + timedelta(days=1))
PREVIOUS = _midnight(START - timedelta(days=LENGTH))


def _sales(rng: random.Random, n: int, first: datetime, last: datetime, tag: str) -> list[Any]:
    span = int((last - first).total_seconds() // 60)
    return [
        {
            "specversion": "1.0",
            "id": f"{tag}-{i}",
            "source": "/shops/pos",
            "type": "shop.sale",
            "time": (first + timedelta(minutes=rng.randrange(span))).isoformat(),
            "shop": SHOP,
            "data": {
                "amount": rng.choice([5, 12.5, 40, 99, 250, 7]),
                "client": f"c{rng.randrange(60)}",
            },
        }
        for i in range(n)
    ]


class _Feed:
    """Applies events in batches at one partition, keeping the arrival order."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.offset, self.plans = engine, 0, PlanCache()
        self.arrived: list[tuple[int, datetime, float, str]] = []  # arrival, time, amount, client

    def send(self, events: list[Any], now: datetime) -> None:
        for b in range(0, len(events), 40):
            chunk = events[b : b + 40]
            messages = [(0, self.offset + i, json.dumps(e).encode()) for i, e in enumerate(chunk)]
            batch = decode_batch_of(TOPIC, messages, 100_000)
            assert apply_batch(self.engine, batch, now, self.plans).counted == len(chunk)
            for e in chunk:
                self.arrived.append((len(self.arrived), datetime.fromisoformat(e["time"]),
                                     float(e["data"]["amount"]), e["data"]["client"]))  # fmt: skip
            self.offset += len(chunk)


def _direct(aggregate: str, events: list[tuple[int, datetime, float, str]],
            lo: datetime | None, hi: datetime) -> float | None:  # fmt: skip
    """The aggregate of the events with lo <= time < hi, computed here."""
    inside = [e for e in events if (lo is None or e[1] >= lo) and e[1] < hi]
    if aggregate == "count":
        return float(len(inside))
    if aggregate == "count_distinct":
        return float(len({e[3] for e in inside}))
    if not inside:
        return None
    if aggregate == "latest":
        return max(inside, key=lambda e: (e[1], e[0]))[2]
    return max(e[2] for e in inside)


def _expected(events: list[tuple[int, datetime, float, str]]) -> dict[str, dict[str, float]]:
    """Per key result: B, V, target and progress, from the events alone (docs/formulas.md)."""
    out = {}
    for key, (aggregate, source) in KEY_RESULTS.items():
        lo = None if source == "history" else PREVIOUS
        baseline = _direct(aggregate, events, lo, S) or 0.0
        target = round(baseline * 1.15, 9)
        additive = aggregate in ("count", "count_distinct")
        if source == "history" and additive:
            # The distinct values of history and period together: a returning client is
            # not counted again; a count is B plus the period's.
            value = _direct(aggregate, events, None, E) or 0.0
        else:
            period = _direct(aggregate, events, S, E)
            value = period if period is not None else (0.0 if additive else baseline)
        if source == "previous_period" and additive:
            progress = value / target if target else float(value >= target)
        else:
            progress = (
                (value - baseline) / (target - baseline)
                if target != baseline
                else float(value >= target)
            )
        out[key] = {"baseline": baseline, "value": value, "target": target, "progress": progress}
    return out


def _shown(engine: Engine, at: datetime) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        report = progress_report(conn, at).to_json()
    (objective,) = report["shops"][0]["objectives"]
    return {kr["key"]: kr for kr in objective["key_results"]} | {"": objective}


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def test_history_and_previous_period_baselines_freeze_to_the_events(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    (tmp_path / "okrs.yaml").write_text(_plan())
    applied_at = datetime(2026, 2, 1, tzinfo=UTC)  # nothing of the topic applied: no cut
    apply_files(engine, [tmp_path / "okrs.yaml"], applied_at)
    rng = random.Random(7)
    feed = _Feed(engine)
    history = _sales(rng, 150, datetime(2026, 1, 5, tzinfo=UTC), S, "h")
    period = _sales(rng, 150, S, E, "p")
    mixed = history + period
    rng.shuffle(mixed)  # out of time order, as late events come
    feed.send(mixed[:200], datetime(2026, 3, 18, tzinfo=UTC))

    # Before the period starts the window is not over: nothing is frozen, nothing shown.
    assert freeze_due_baselines(engine, TOPIC, S - timedelta(seconds=1)) == []
    waiting = _shown(engine, S - timedelta(seconds=1))
    for key in KEY_RESULTS:
        figures = waiting[key]
        assert [figures[f] for f in ("baseline", "target", "progress", "expected", "status")] == [
            None
        ] * 5, key
    assert waiting["plain"]["status"] is not None
    # The objective's roll-up leaves them out: only `plain` counts.
    assert _close(waiting[""]["progress"], min(1.0, waiting["plain"]["progress"]))

    feed.send(mixed[200:], datetime(2026, 3, 25, tzinfo=UTC))
    with engine.connect() as conn:
        clock_before = plans_revision(conn)
    frozen_at = S + timedelta(days=6)
    # Applied while nothing of the topic was: a job without a cut. The window is over, but
    # the baselines wait until a scan has recorded where the log ends (else: frozen at 0).
    assert freeze_due_baselines(engine, TOPIC, frozen_at) == []
    with engine.begin() as conn:  # the runner's finish, simulated: the log ends at the feed's
        job_id = conn.execute(select(backfill_jobs.c.id)).scalar_one()
        add_uncut_partitions(conn, job_id, {0: feed.offset})
        conn.execute(update(backfill_jobs).values(state="running"))
    lines = freeze_due_baselines(engine, TOPIC, frozen_at)
    expected = _expected(feed.arrived)
    assert sorted(lines) == sorted(
        f"{SHOP}: measured key result spring/{key}: baseline {expected[key]['baseline']:g} "
        f"(from {source})"
        for key, (_, source) in KEY_RESULTS.items()
    )
    assert freeze_due_baselines(engine, TOPIC, frozen_at) == []  # idempotent

    with engine.connect() as conn:
        revision = conn.execute(
            select(plan_revisions).order_by(plan_revisions.c.id.desc()).limit(1)
        ).one()
        first_source = conn.execute(
            select(plan_revisions.c.source).order_by(plan_revisions.c.id).limit(1)
        ).scalar_one()
        assert plans_revision(conn) == revision.id > clock_before
        states = dict(conn.execute(select(key_results.c.key, key_results.c.baseline_state)).all())
    assert revision.source == first_source
    assert {c["action"] for c in json.loads(revision.changes)} == {"measured"}
    assert states == {"plain": None, **{key: "measured" for key in KEY_RESULTS}}

    def check(at: datetime) -> None:
        shown = _shown(engine, at)
        for key, want in expected.items():
            got = shown[key]
            for name in ("baseline", "value", "target", "progress"):
                assert _close(got[name], want[name]), (key, name, got[name], want[name])
            assert got["status"] is not None

    check(frozen_at)
    # Late events of the baseline windows (and of history) after the freeze change nothing.
    late = _sales(random.Random(8), 30, PREVIOUS + timedelta(days=1), S, "late")
    for i, e in enumerate(late):
        e["data"]["client"] = f"new-{i}"
    feed.send(late, frozen_at + timedelta(hours=1))
    check(frozen_at)


def test_the_freeze_waits_for_the_backfill_and_the_live_worker(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    feed = _Feed(engine)
    (tmp_path / "first.yaml").write_text(_plan().split("      - {key: hist_n")[0])
    early = _sales(random.Random(3), 40, datetime(2026, 2, 1, tzinfo=UTC), S, "e")
    # Something applied: the apply of a measured baseline records a cut, even before S.
    apply_files(engine, [tmp_path / "first.yaml"], datetime(2026, 1, 1, tzinfo=UTC))
    feed.send(early, datetime(2026, 3, 1, tzinfo=UTC))
    (tmp_path / "okrs.yaml").write_text(_plan())
    parsed = parse_files([tmp_path / "okrs.yaml"])
    apply_parsed(engine, parsed, datetime(2026, 3, 2, tzinfo=UTC), events_topic=TOPIC)
    with engine.connect() as conn:
        (job,) = conn.execute(select(backfill_jobs)).all()
        cut = dict(
            conn.execute(
                select(backfill_partitions.c.kafka_partition, backfill_partitions.c.cut_offset)
            ).all()
        )
    assert job.state == "pending" and cut == {0: len(early)}
    after = S + timedelta(days=1)
    assert freeze_due_baselines(engine, TOPIC, after) == []  # the scan has not finished
    # The runner's finish (simulated): the scan counted the events below the cut (here: the
    # test counts them through the live path of a fresh batch instead) and writes each
    # partition's log end as its freeze offset, ahead of the live worker.
    with engine.begin() as conn:
        conn.execute(update(backfill_partitions).values(freeze_offset=len(early) + 5))
        conn.execute(update(backfill_jobs).values(state="running"))
    assert freeze_due_baselines(engine, TOPIC, after) == []  # the live worker is behind
    feed.send(_sales(random.Random(4), 5, S, E, "x"), after)
    lines = freeze_due_baselines(engine, TOPIC, after)
    assert len(lines) == len(KEY_RESULTS)
    with engine.connect() as conn:
        (job,) = conn.execute(select(backfill_jobs)).all()
    assert job.state == "done" and job.finished_at is not None


def test_a_job_whose_waiting_key_result_was_retired_is_done(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    feed = _Feed(engine)
    head = _plan().split("      - {key: hist_n")[0]
    measured = '      - {key: m, metric: {event: shop.sale, aggregate: count}, baseline: {from: history}, target: "+15%"}\n'  # fmt: skip
    (tmp_path / "v1.yaml").write_text(head)
    apply_files(engine, [tmp_path / "v1.yaml"], datetime(2026, 1, 1, tzinfo=UTC))
    feed.send(_sales(random.Random(5), 10, datetime(2026, 2, 1, tzinfo=UTC), S, "e"), S)
    mid_period = S + timedelta(days=2)
    for name, text in (("v2.yaml", head + measured), ("v3.yaml", head)):
        (tmp_path / name).write_text(text)
        parsed = parse_files([tmp_path / name])
        if name == "v3.yaml":  # the runner finished the scan; its key result still waited
            with engine.begin() as conn:
                conn.execute(update(backfill_partitions).values(freeze_offset=10**6))
                conn.execute(update(backfill_jobs).values(state="running"))
            with engine.connect() as conn:
                assert conn.execute(select(backfill_jobs.c.state)).scalar_one() == "running"
        apply_parsed(engine, parsed, mid_period, events_topic=TOPIC)
    # Retired: nothing waits any more; the apply's freeze marks the job done.
    with engine.connect() as conn:
        (job,) = conn.execute(select(backfill_jobs)).all()
    assert job.state == "done"
