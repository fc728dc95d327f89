"""`okrflow demo`: the whole pipeline on this machine, with a simulated shop, until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

from sqlalchemy import Engine

from okrflow.devkafka import LocalKafka, LocalKafkaError
from okrflow.events.emit import emit_lines
from okrflow.plans.apply import apply_files
from okrflow.reports.progress import progress_report
from okrflow.settings import Settings
from okrflow.store.engine import make_engine
from okrflow.store.schema import upgrade

DEMO_SHOP = "salone-bella"

# (type, data factory): a small salon that sells, advertises and posts on TikTok.
_EVENT_KINDS: list[tuple[str, Any]] = [
    ("order.placed", lambda r: {
        "order_id": f"o-{r.randrange(10**9)}", "customer_id": f"c-{r.randrange(500)}",
        "total": round(r.uniform(15, 120), 2), "currency": "EUR", "service": "haircut"}),
    ("customer.created", lambda r: {"customer_id": f"c-{r.randrange(10**6)}", "channel": "pos"}),
    ("campaign.launched", lambda r: {
        "campaign_id": f"cmp-{r.randrange(10**6)}", "channel": "instagram", "kind": "promo"}),
    ("social.post.published", lambda r: {"platform": "tiktok", "post_id": f"p-{r.randrange(10**9)}"}),
    ("partnership.signed", lambda r: {"partner_id": f"partner-{r.randrange(40)}"}),
]  # fmt: skip


def simulated_events(rng: random.Random, count: int) -> Iterator[str]:
    """`count` CloudEvents (JSON lines) as the demo shop's platform would emit them now."""
    import json

    weights = [6, 3, 1, 4, 1]
    for _ in range(count):
        event_type, make_data = rng.choices(_EVENT_KINDS, weights)[0]
        yield json.dumps({
            "specversion": "1.0", "id": str(uuid.uuid4()), "source": f"/shops/{DEMO_SHOP}/pos",
            "type": event_type, "time": datetime.now(UTC).isoformat(), "shop": DEMO_SHOP,
            "data": make_data(rng),
        })  # fmt: skip


def run_demo(settings: Settings, kafka: LocalKafka, max_seconds: float | None = None) -> int:
    """Start Kafka (if needed), the worker and the exporter, emit events until interrupted.

    Everything started here is stopped on Ctrl-C/SIGTERM (or after `max_seconds`).
    """
    started_at = time.monotonic()
    print(f"okrflow demo: database {settings.database_url}, Kafka {settings.kafka_bootstrap}")
    try:
        started_kafka = kafka.start(settings.kafka_start_timeout)
    except LocalKafkaError as exc:
        print(f"okrflow demo: {exc}", file=sys.stderr)
        return 1
    print("  Kafka: " + ("started" if started_kafka else "already running, reused"))
    engine = make_engine(settings.database_url, writer=True)
    upgrade(engine)
    plan_file = _demo_plan(settings)
    for result in apply_files(engine, [plan_file], datetime.now(UTC)):
        print(f"  plan {plan_file}: {len(result.changes)} change(s)")
    env = {**os.environ, "OKRFLOW_DATABASE_URL": settings.database_url,
           "OKRFLOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "OKRFLOW_EXPORTER_PORT": str(settings.exporter_port)}  # fmt: skip
    logs = settings.kafka_cache_dir.parent / "demo"
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "okrflow", role],
            env=env,
            stdout=(logs / f"{role}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        for role in ("worker", "exporter")
    ]
    print(f"  logs: {logs}/worker.log, {logs}/exporter.log")
    metrics_url = f"http://{settings.exporter_host}:{settings.exporter_port}/metrics"
    print(f"  worker and exporter started; metrics at {metrics_url}")
    print("  simulated shop emits ~10 events/s; Ctrl-C stops everything\n")
    stop = False

    def on_sigterm(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_sigterm)
    rng = random.Random(42)
    first_count_reported = False
    try:
        while not stop and (max_seconds is None or time.monotonic() - started_at < max_seconds):
            asyncio.run(emit_lines(settings, simulated_events(rng, 20)))
            total = _scrape_total(metrics_url)
            if total and not first_count_reported:
                first_count_reported = True
                print(f"  first events counted after {time.monotonic() - started_at:.1f}s")
            print(
                f"  okr_shop_events_total{{shop={DEMO_SHOP!r}}} sum = {total}  |  {_objectives_line(engine)}",
                flush=True,
            )
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping worker and exporter...")
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        if started_kafka:
            print("stopping Kafka...")
            kafka.stop()
        print("demo stopped")
    return 0


def _demo_plan(settings: Settings) -> Path:
    """The demo plan, with a period from 30 days ago to 60 days ahead."""
    today = date.today()
    template = files("okrflow") / "demo_plan" / "okrs.yaml.template"  # shipped in the package
    text = Template(template.read_text()).substitute(
        start=(today - timedelta(days=30)).isoformat(), end=(today + timedelta(days=60)).isoformat()
    )
    path = settings.kafka_cache_dir.parent / "demo" / "okrs.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _objectives_line(engine: Engine) -> str:
    with engine.connect() as conn:
        report = progress_report(conn, datetime.now(UTC), DEMO_SHOP)
    return "  ".join(
        f"{o['key']} {o['progress']:.0%} (expected {o['expected']:.0%}, {o['status']})"
        for shop in report["shops"] for o in shop["objectives"]
    )  # fmt: skip


_SAMPLE = re.compile(
    r'^okr_shop_events_total\{[^}]*shop="' + DEMO_SHOP + r'"[^}]*\} ([0-9.e+]+)$', re.M
)


def _scrape_total(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return 0
    return int(sum(float(v) for v in _SAMPLE.findall(text)))
