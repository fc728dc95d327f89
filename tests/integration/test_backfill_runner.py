"""The backfill runner's chunk transaction and leases on real SQLite and PostgreSQL
(docs/design/history-and-backfill.md 1.4), and `okrflow backfill`'s operator errors:

- records already scanned, at or past the cut, dead-lettered, undecodable or of another shop
  count nowhere; a replayed chunk counts nothing twice; duplicate ids count once;
- a runner that lost its job (another took it over) writes nothing: fencing by owner;
- a job whose key results were all retired is cancelled;
- an event the database refuses is found by bisection and skipped by the job, the rest count;
- the lease: held jobs are not taken, expired ones are.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from okrflow.backfill.chunk import JobIndex, apply_chunk
from okrflow.backfill.runner import Runner
from okrflow.counting.decode import Message
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.plans.apply import apply_files
from okrflow.settings import Settings
from okrflow.store.backfill import db_now, list_jobs, read_partitions, take_job
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from tests.factories import decode_batch_of
from tests.integration.processes import okrflow, okrflow_env

SHOP = "salone-bella"
TOPIC = "okr.events"
NOW = datetime.now(UTC)
START = (NOW - timedelta(days=20)).date()
END = (NOW + timedelta(days=20)).date()
V1 = f"""\
shop: {SHOP}
timezone: Europe/Rome
objectives:
  - key: spring
    title: Spring
    owner: sales
    period: {{start: {START}, end: {END}}}
    key_results:
      - {{key: sales, metric: {{event: shop.sale, aggregate: count}}, target: 1000}}
"""
V2 = (
    V1
    + """\
      - {key: again, metric: {event: shop.sale, aggregate: count}, target: 1000}
"""
)
WHEN = (NOW - timedelta(days=2)).isoformat()

TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER poison BEFORE INSERT ON backfill_seen WHEN NEW.event_id LIKE 'db-poison%' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test constraint'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
        "IF left(NEW.event_id, 9) = 'db-poison' THEN "
        "RAISE EXCEPTION 'refused by the test constraint' USING ERRCODE = '23514'; END IF; "
        "RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER poison BEFORE INSERT ON backfill_seen FOR EACH ROW "
        "EXECUTE FUNCTION poison()",
    ],
}


def _sale(event_id: str, shop: str = SHOP) -> bytes:
    return json.dumps({
        "specversion": "1.0", "id": event_id, "source": "/pos", "type": "shop.sale",
        "time": WHEN, "shop": shop, "data": {"amount": 10},
    }).encode()  # fmt: skip


def _job(database_url: str, tmp_path: Path, cut: int) -> tuple[Engine, int, list[Message]]:
    """v1 applied, `cut` messages of partition 0 counted live, then v2 (one new key result):
    a job with cut {0: cut}. Returns the engine, the job id and those messages."""
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    (tmp_path / "v1.yaml").write_text(V1)
    (tmp_path / "v2.yaml").write_text(V2)
    apply_files(engine, [tmp_path / "v1.yaml"], NOW)
    messages = [Message(0, o, _sale(f"e-{o}")) for o in range(cut)]
    batch = decode_batch_of(TOPIC, [(m.partition, m.offset, m.value) for m in messages], 10**6)
    apply_batch(engine, batch, NOW, PlanCache())
    apply_files(engine, [tmp_path / "v2.yaml"], NOW)
    with engine.connect() as conn:
        (job,) = list_jobs(conn, SHOP, ("pending",))
    return engine, job.id, messages


def _take(engine: Engine, job_id: int, owner: str, seconds: float = 30) -> bool:
    with engine.begin() as conn:
        now = db_now(conn)
        return take_job(conn, job_id, owner, now, now + timedelta(seconds=seconds))


def _value(engine: Engine, key: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT coalesce(sum(d.events), 0) FROM kr_day_totals d JOIN key_results k "
                    "ON k.id = d.key_result_id WHERE k.key = :k AND k.retired_at IS NULL"
                ),
                {"k": key},
            ).scalar_one()
        )


def _chunk(engine: Engine, job: int, owner: str, records: list[Message], end: int,
           skip: frozenset[int] = frozenset()) -> str:  # fmt: skip
    return apply_chunk(
        engine, job, owner, TOPIC, records, {0: end}, {0: skip}, JobIndex(), 30
    ).state


def test_a_chunk_counts_only_its_range_once(database_url: str, tmp_path: Path) -> None:
    engine, job, messages = _job(database_url, tmp_path, cut=10)
    assert _take(engine, job, "a")
    extra = [
        Message(0, 10, _sale("e-live")),  # at the cut: the live worker's
        Message(0, 11, _sale("e-later")),
    ]
    hostile = [Message(0, 3, b"{not json")]  # (offset 3 replaced: undecodable)
    chunk = [*messages[:3], *hostile, *messages[4:6], Message(0, 6, _sale("e-0")),  # a dup id
             Message(0, 7, _sale("x-1", shop="other-shop")), *messages[8:], *extra]  # fmt: skip
    assert _chunk(engine, job, "a", chunk, 12, skip=frozenset({9})) == "counted"
    # 0,1,2,4,5 count; 3 undecodable; 6 a duplicate of 0; 7 another shop; 8 counts; 9 skipped
    # (dead-lettered); 10 and 11 are at or past the cut.
    assert _value(engine, "again") == 6
    assert _value(engine, "sales") == 10  # the live key result is not touched
    with engine.connect() as conn:
        assert read_partitions(conn, job)[0].next_offset == 10
    # The same chunk again (a replay after a crash between fetch and commit): nothing more.
    assert _chunk(engine, job, "a", chunk, 12) == "counted"
    assert _value(engine, "again") == 6


def test_a_runner_that_lost_its_job_writes_nothing(database_url: str, tmp_path: Path) -> None:
    engine, job, messages = _job(database_url, tmp_path, cut=10)
    assert _take(engine, job, "a", seconds=1)
    assert not _take(engine, job, "b")  # held
    time.sleep(1.5)
    assert _take(engine, job, "b")  # the lease ran out: taken over
    assert _chunk(engine, job, "a", messages, 10) == "fenced"
    assert _value(engine, "again") == 0
    with engine.connect() as conn:
        assert read_partitions(conn, job)[0].next_offset is None
    assert _chunk(engine, job, "b", messages, 10) == "counted"
    assert _value(engine, "again") == 10


def test_a_job_whose_key_results_were_retired_is_cancelled(
    database_url: str, tmp_path: Path
) -> None:
    engine, job, messages = _job(database_url, tmp_path, cut=5)
    apply_files(engine, [tmp_path / "v1.yaml"], NOW)  # retires `again`
    assert _take(engine, job, "a")
    assert _chunk(engine, job, "a", messages, 5) == "cancelled"
    with engine.connect() as conn:
        assert [j.state for j in list_jobs(conn, SHOP, ("cancelled",))] == ["cancelled"]


def test_an_event_the_database_refuses_is_skipped_by_the_job(
    database_url: str, tmp_path: Path
) -> None:
    engine, job, messages = _job(database_url, tmp_path, cut=12)
    with engine.begin() as conn:
        for statement in TRIGGER[engine.dialect.name]:
            conn.exec_driver_sql(statement)
    poisoned = [*messages[:7], Message(0, 7, _sale("db-poison-1")), *messages[8:]]
    runner = Runner(Settings(events_topic=TOPIC), engine, owner="a")
    assert _take(engine, job, "a")
    result = runner._count(job, TOPIC, poisoned, {0: 12}, {}, JobIndex())  # type: ignore[arg-type]
    assert result.state == "counted" and result.skipped == 1
    assert _value(engine, "again") == 11
    with engine.connect() as conn:
        (row,) = [j for j in list_jobs(conn, SHOP, ("running",)) if j.id == job]
    assert row.skipped_events == 1


def test_operator_errors_are_one_line(tmp_path: Path) -> None:
    missing = okrflow(okrflow_env(database_url=f"sqlite:///{tmp_path / 'none.db'}"), "backfill")
    assert missing.returncode == 5, missing.stderr
    assert missing.stderr.strip().endswith("(nothing to backfill: apply a plan first)")
    engine = make_engine(f"sqlite:///{tmp_path / 'okrflow.db'}", writer=True)
    ensure_schema(engine)
    (tmp_path / "v1.yaml").write_text(V1)
    apply_files(engine, [tmp_path / "v1.yaml"], NOW)
    env = okrflow_env(database_url=f"sqlite:///{tmp_path / 'okrflow.db'}")
    unknown = okrflow(env, "backfill", "--shop", "nope")
    assert unknown.returncode == 10, unknown.stderr
    assert unknown.stderr.count("\n") == 1 and "salone-bella" in unknown.stderr
    nothing = okrflow(env, "backfill")
    assert nothing.returncode == 0 and "no backfill to run" in nothing.stdout
    for result in (missing, unknown):
        assert "Traceback" not in result.stderr and result.stderr.startswith("okrflow backfill:")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_kafka_unreachable_is_exit_6(database_url: str, tmp_path: Path) -> None:
    engine, _job_id, _ = _job(database_url, tmp_path, cut=3)
    engine.dispose()
    env = okrflow_env(database_url=database_url, kafka_bootstrap="127.0.0.1:1",
                      events_topic=TOPIC, startup_deadline_seconds=1)  # fmt: skip
    result = okrflow(env, "backfill")
    assert result.returncode == 6, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr
    assert last.startswith("okrflow backfill: cannot reach Kafka at 127.0.0.1:1"), last
