"""The per-day history as the batch transaction writes it, on real SQLite and PostgreSQL:
events arriving out of time order, in several batches, fold back (as of every local day)
to the aggregate computed directly from the events; the current state is what it was
before per-day storage existed (the kr_series summary); a distinct value sits on the
earliest local day of any event carrying it."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from okrflow.domain.history import SeriesRows, state_as_of
from okrflow.domain.periods import local_day
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.plans.apply import apply_files
from okrflow.plans.stored import load_active_plans
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.store.series_reads import read_series_rows, read_series_states
from okrflow.store.tables import kr_distinct_values, kr_series
from tests.factories import decode_batch_of

TZ = "Europe/Rome"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
SHOP = "salone-bella"
PLAN = f"""\
shop: {SHOP}
timezone: {TZ}
objectives:
  - key: spring
    title: Spring
    owner: sales
    period: {{start: 2026-03-20, end: 2026-04-10}}
    key_results:
"""
AGGREGATES = {"n": "count", "revenue": "sum", "clients": "count_distinct", "last": "latest",
              "top": "max", "low": "min"}  # fmt: skip
for _key, _aggregate in AGGREGATES.items():
    _field = "" if _aggregate == "count" else (
        ", field: data.client" if _aggregate == "count_distinct" else ", field: data.amount"
    )  # fmt: skip
    PLAN += (
        f"      - {{key: {_key}, metric: {{event: shop.sale, aggregate: {_aggregate}{_field}}}, "
        "target: 1000000}\n"
    )
FIRST, LAST = date(2026, 3, 24), date(2026, 4, 2)  # across the spring DST change


def _events(rng: random.Random) -> list[dict[str, object]]:
    """Sales over ten local days, at whole minutes (ties happen), delivered out of order."""
    start = datetime.combine(FIRST, datetime.min.time(), ZoneInfo(TZ)).astimezone(UTC)
    span = int((datetime.combine(LAST + timedelta(days=1), datetime.min.time(), ZoneInfo(TZ))
                .astimezone(UTC) - start).total_seconds() // 60)  # fmt: skip
    events = []
    for i in range(240):
        at = start + timedelta(minutes=rng.randrange(span))
        events.append({
            "specversion": "1.0", "id": f"s-{i}", "source": "/shops/pos", "type": "shop.sale",
            "time": at.isoformat(), "shop": SHOP,
            "data": {"amount": rng.choice([5, 12.5, 40, 99, 250]), "client": f"c{rng.randrange(40)}"},
        })  # fmt: skip
    rng.shuffle(events)
    return events


def _direct(aggregate: str, events: list[tuple[int, datetime, float, str]], end: datetime) -> float | None:  # fmt: skip
    """(arrival, time, amount, client) before `end`, aggregated here."""
    before = [e for e in events if e[1] < end]
    if aggregate == "count":
        return float(len(before))
    if aggregate == "sum":
        return float(sum(e[2] for e in before))
    if aggregate == "count_distinct":
        return float(len({e[3] for e in before}))
    if not before:
        return None
    if aggregate == "latest":
        return max(before, key=lambda e: (e[1], e[0]))[2]
    amounts = [e[2] for e in before]
    return max(amounts) if aggregate == "max" else min(amounts)


def test_the_days_fold_back_to_the_events_on_every_day(database_url: str, tmp_path: Path) -> None:
    engine: Engine = make_engine(database_url)
    ensure_schema(engine)
    (tmp_path / "okrs.yaml").write_text(PLAN)
    apply_files(engine, [tmp_path / "okrs.yaml"], NOW)
    events = _events(random.Random(12))
    plans = PlanCache()
    for b in range(0, len(events), 25):
        chunk = events[b : b + 25]
        messages = [(0, b + i, json.dumps(e).encode()) for i, e in enumerate(chunk)]
        result = apply_batch(engine, decode_batch_of("events", messages, 100_000), NOW, plans)
        assert result.counted == len(chunk)
    raw = [
        (i, datetime.fromisoformat(str(e["time"])), float(e["data"]["amount"]),  # type: ignore[index]
         str(e["data"]["client"]))  # type: ignore[index]
        for i, e in enumerate(events)
    ]  # fmt: skip
    with engine.connect() as conn:
        (active,) = load_active_plans(conn)
        ids = {kr: active.key_result_ids["spring", kr] for kr in AGGREGATES}
        rows = read_series_rows(conn, ids.values())
        now = read_series_states(conn, ids.values())
        summary = {r.key_result_id: r for r in conn.execute(select(kr_series))}
        first_days = dict(conn.execute(select(kr_distinct_values.c.value,
                                              kr_distinct_values.c.first_day)).all())  # fmt: skip
    for kr, aggregate in AGGREGATES.items():
        series = rows.get((ids[kr], "value"), SeriesRows())
        day = FIRST - timedelta(days=1)
        while day <= LAST + timedelta(days=1):
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), ZoneInfo(TZ))
            state = state_as_of(aggregate, series, day, TZ)
            value = state.total if aggregate in ("count", "sum", "count_distinct") else state.level
            assert value == _direct(aggregate, raw, end), (kr, day)
            day += timedelta(days=1)
        # Now: the summary's level and events, the days' totals, as before per-day storage.
        current = now[ids[kr]]["value"]
        assert current.level == summary[ids[kr]].level
        assert current.events == summary[ids[kr]].events == len(events)
        assert current.total == (_direct(aggregate, raw, NOW.replace(year=2027)) or 0.0
                                 if aggregate in ("count", "sum", "count_distinct") else 0.0)  # fmt: skip
        # And the fold of every day gives the same level as the summary (data written since
        # migration 0004).
        latest = state_as_of(aggregate, series, LAST, TZ)
        assert latest.level == current.level
        assert latest.last_event_at == max(t for _, t, _, _ in raw)
    earliest: dict[str, date] = {}
    for _, at, _, client in raw:
        day = local_day(at, TZ)
        earliest[json.dumps(client)] = min(day, earliest.get(json.dumps(client), day))
    assert first_days == earliest
