"""The exporter's snapshots on real SQLite and PostgreSQL: one refresh reads one consistent
database snapshot while batches keep committing, a failed refresh is not reported as fresh,
and forecasts stand on the day buckets read."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, bindparam, insert, update

from okrflow.domain.forecast import KeyResultForecast
from okrflow.domain.forecast_plan import forecast_plan
from okrflow.domain.model import metric_parts
from okrflow.domain.progress import measure_plan
from okrflow.exporter.collector import OkrCollector
from okrflow.exporter.forecasts import ForecastBook
from okrflow.exporter.render import OkrRenderer
from okrflow.exporter.snapshot import ProgressSnapshot, SnapshotReader
from okrflow.plans.apply import apply_files
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.store.tables import applied_offsets, kr_day_totals, kr_series, shop_event_totals

NOW = datetime(2026, 3, 1, tzinfo=UTC)
PLAN = """\
shop: salone-bella
timezone: Europe/Rome
objectives:
  - key: growth
    title: Growth
    owner: marketing
    period: {start: 2026-01-01, end: 2026-06-30}
    key_results:
      - {key: clients, metric: {event: customer.created, aggregate: count}, target: 50000}
      - {key: orders, metric: {event: order.placed, aggregate: count}, target: 50000}
      - {key: refunds, metric: {event: order.refunded, aggregate: count}, target: 50000}
      - {key: posts, metric: {event: social.post.published, aggregate: count}, target: 50000}
      - {key: campaigns, metric: {event: campaign.launched, aggregate: count}, target: 50000}
      - key: refund-rate
        metric: {ratio: {numerator: {event: order.refunded, aggregate: count},
                         denominator: {event: order.placed, aggregate: count}}}
        maintain: {below: 0.5}
"""
DAYS = 60  # day buckets per series: a refresh reads 7 x 60 day rows
FIRST_DAY = date(2026, 1, 1)
DAYS_PER_BATCH = 10
PER_DAY = 6  # events per series and day in one batch: 7 x 10 x 6 = 420 events a batch
BATCHES = 96  # 40,320 events


class Writer:
    """Commits batches the way the worker's batch transaction does: a series' day buckets,
    its events total and the applied offsets move together, in one transaction."""

    def __init__(self, engine: Engine, series: list[tuple[int, str]]) -> None:
        self.engine, self.series, self.batches = engine, series, 0
        # `okrflow apply` created the kr_series rows; the day buckets exist from the start.
        with engine.begin() as conn:
            conn.execute(insert(applied_offsets), [
                {"topic": "okr.events", "kafka_partition": 0, "next_offset": 0},
            ])  # fmt: skip
            conn.execute(insert(kr_day_totals), [
                {"key_result_id": k, "part": p, "day": FIRST_DAY + timedelta(days=d),
                 "events": 0, "total": 0.0}
                for k, p in series for d in range(DAYS)
            ])  # fmt: skip

    def commit_batch(self) -> int:
        """One batch; returns its number of events."""
        days = [FIRST_DAY + timedelta(days=(self.batches * DAYS_PER_BATCH + j) % DAYS)
                for j in range(DAYS_PER_BATCH)]  # fmt: skip
        events = len(self.series) * len(days) * PER_DAY
        with self.engine.begin() as conn:
            conn.execute(
                update(kr_day_totals)
                .where(kr_day_totals.c.key_result_id == bindparam("k"),
                       kr_day_totals.c.part == bindparam("p"), kr_day_totals.c.day == bindparam("d"))
                .values(events=kr_day_totals.c.events + PER_DAY,
                        total=kr_day_totals.c.total + PER_DAY),
                [{"k": k, "p": p, "d": d} for k, p in self.series for d in days],
            )  # fmt: skip
            conn.execute(
                update(kr_series)
                .where(kr_series.c.key_result_id == bindparam("k"), kr_series.c.part == bindparam("p"))
                .values(events=kr_series.c.events + PER_DAY * len(days)),
                [{"k": k, "p": p} for k, p in self.series],
            )  # fmt: skip
            conn.execute(
                update(applied_offsets).values(next_offset=applied_offsets.c.next_offset + events)
            )
        self.batches += 1
        return events


@pytest.fixture
def setup(database_url: str, tmp_path: Path) -> Iterator[tuple[Writer, Engine]]:
    """A writer (the worker's kind of engine, with the plan applied) and the exporter's engine
    (not a writer)."""
    writer = make_engine(database_url, writer=True)
    ensure_schema(writer)
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN)
    apply_files(writer, [plan], NOW)
    reader = make_engine(database_url)
    first = SnapshotReader(reader)(0.0)
    assert first is not None
    (active,) = first.plans
    series = [
        (active.key_result_ids[o.key, kr.key], part)
        for o in active.plan.objectives
        for kr in o.key_results
        for part, _ in metric_parts(kr.metric)
    ]
    assert len(series) == 7
    yield Writer(writer, series), reader
    writer.dispose()
    reader.dispose()


def _torn(snapshot: ProgressSnapshot) -> list[str]:
    """Series whose events total disagrees with the sum of its own day buckets."""
    return [
        f"key result {kr_id} {part}: events {s.events}, day buckets {sum(s.day_counts.values())}"
        for kr_id, parts in snapshot.states.items()
        for part, s in parts.items()
        if s.events != sum(s.day_counts.values())
    ]


def _events(snapshot: ProgressSnapshot) -> int:
    return sum(s.events for parts in snapshot.states.values() for s in parts.values())


def test_every_snapshot_is_consistent_while_batches_commit(
    setup: tuple[Writer, Engine],
) -> None:
    writer, reader_engine = setup
    failures: list[BaseException] = []
    written = [0]

    def write() -> None:
        try:
            for _ in range(BATCHES):
                written[0] += writer.commit_batch()
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    # The exporter's real checkpoint waits (up to 1 s) while a scrape renders, in the middle
    # of a refresh; a short sleep stands for that and lets batches commit mid-refresh.
    reader = SnapshotReader(reader_engine, checkpoint=lambda: time.sleep(0.003))
    thread = threading.Thread(target=write, name="writer")
    thread.start()
    checked = 0
    torn: list[str] = []
    last: ProgressSnapshot | None = None
    try:
        while thread.is_alive():
            snapshot = reader(time.time())
            if snapshot is None:
                continue
            last = snapshot
            checked += 1
            torn += _torn(snapshot)
    finally:
        thread.join()
    assert not failures, failures
    assert not torn, f"{len(torn)} torn series in {checked} snapshots, e.g. {torn[:3]}"
    assert checked >= 10, f"only {checked} snapshots were taken while batches committed"

    # None: the last read in the loop already saw the final commit.
    final = reader(time.time()) or last
    assert final is not None and not _torn(final)
    assert written[0] == 40_320
    assert _events(final) == written[0]


def test_a_failed_refresh_is_not_reported_as_fresh(setup: tuple[Writer, Engine]) -> None:
    writer, reader_engine = setup
    writer.commit_batch()
    fail = [True]

    def checkpoint() -> None:  # the database goes away in the middle of the read
        if fail[0]:
            fail[0] = False
            raise ConnectionError("database went away")

    reader = SnapshotReader(reader_engine, checkpoint)
    collector = OkrCollector(reader, forget=reader.forget)
    collector.refresh()
    assert collector.renderer is None
    assert _sample(collector, "okrflow_exporter_refresh_errors_total") == 1
    assert _sample(collector, "okrflow_exporter_snapshot_age_seconds") is None  # nothing served

    # Nothing changed in the database since: the failed read must still be done again.
    collector.refresh()
    assert collector.renderer is not None
    assert _events(collector.renderer.snapshot) == 420
    assert _sample(collector, "okrflow_exporter_snapshot_age_seconds") is not None

    # A later failure keeps serving that snapshot, and its age grows.
    served = collector.renderer
    writer.commit_batch()
    fail[0] = True
    time.sleep(0.5)
    collector.refresh()
    assert collector.renderer is served
    assert _sample(collector, "okrflow_exporter_refresh_errors_total") == 2
    stale = _sample(collector, "okrflow_exporter_snapshot_age_seconds")
    assert stale is not None and stale >= 0.5
    collector.refresh()
    assert collector.renderer is not served
    assert _events(collector.renderer.snapshot) == 840
    fresh = _sample(collector, "okrflow_exporter_snapshot_age_seconds")
    assert fresh is not None and fresh < stale


def test_only_shops_with_a_plan_are_shown(setup: tuple[Writer, Engine]) -> None:
    writer, reader_engine = setup
    with writer.engine.begin() as conn:
        conn.execute(insert(shop_event_totals), [
            {"shop": "salone-bella", "event_type": "order.placed", "events": 3},
            {"shop": "salone-bella", "event_type": "made.up", "events": 2},
            {"shop": "no-plan", "event_type": "order.placed", "events": 5},
        ])  # fmt: skip
    snapshot = SnapshotReader(reader_engine)(0.0)
    assert snapshot is not None
    assert snapshot.shop_events == (
        ("salone-bella", "made.up", 2),
        ("salone-bella", "order.placed", 3),
    )
    lines = [
        line
        for line in OkrRenderer(snapshot).render(NOW).splitlines()
        if line.startswith("okr_shop_events_total{")
    ]
    assert lines == [
        'okr_shop_events_total{shop="salone-bella",type="order.placed"} 3.0',
        'okr_shop_events_total{shop="salone-bella",type="other"} 2.0',
    ]


def _sample(collector: OkrCollector, name: str) -> float | None:
    for family in collector.collect():
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


def test_forecasts_stand_on_the_day_buckets_read(setup: tuple[Writer, Engine]) -> None:
    writer, reader_engine = setup
    for _ in range(DAYS // DAYS_PER_BATCH):  # 6 events a day on every day, a series
        writer.commit_batch()
    snapshot = SnapshotReader(reader_engine)(NOW.timestamp())
    assert snapshot is not None
    (active,) = snapshot.plans
    states = {pair: snapshot.states[i] for pair, i in active.key_result_ids.items()}
    found = forecast_plan(active.plan, measure_plan(active.plan, states), states, NOW)
    lines = OkrRenderer(snapshot, forecasts=ForecastBook()).render(NOW).splitlines()
    basis = {
        line.split('key_result="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("okr_key_result_forecast_basis_days{")
    }
    # The five counts, on the 59 complete local days before 2026-03-01; not the ratio.
    assert basis == dict.fromkeys(["clients", "orders", "refunds", "posts", "campaigns"], 59.0)
    orders = found.key_results["growth", "orders"]
    assert isinstance(orders, KeyResultForecast) and orders.basis_days == 59
    line = 'okr_key_result_forecast_probability{shop="salone-bella",objective="growth",key_result="orders"}'
    assert f"{line} {float(orders.probability)!r}" in lines
    assert 0 < orders.p10 < orders.p50 < orders.p90  # 6 a day ahead, with some doubt
