"""What writes while tests/perf/scrape_bench.py scrapes: a real `okrflow worker` consuming a
steady stream from a local Kafka broker (the default), a process applying 500-event batches
back to back (`direct`), or nothing (`none`); and how the exporter is started and stopped."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from okrflow.counting.decode import Message, decode_batch
from okrflow.devkafka import LocalKafka
from okrflow.ingest.plan_cache import PlanCache
from okrflow.ingest.transaction import apply_batch
from okrflow.settings import BUNDLED_KAFKA_CONFIG, Settings
from okrflow.store.engine import make_engine
from okrflow.topics import ensure_topics
from tests.factories import encoded
from tests.integration.processes import okrflow_env
from tests.integration.streams import applied_messages
from tests.perf.bench import REPO, produce
from tests.services import free_port

TYPES = ["customer.created", "order.placed", "social.post.published", "social.followers.changed"]


@dataclass(frozen=True)
class Load:
    """The shops the events go to (`scrape-0` ...) and the event time they all carry."""

    shops: int
    time: str


def writer(url: str, stop: Any, counter: Any, load: Load) -> None:
    """Applies batches until `stop` is set; runs in its own process, like a real worker."""
    engine = make_engine(url, writer=True)
    plans = PlanCache()
    batch_no = 0
    types = TYPES
    while not stop.is_set() and batch_no < 10_000:  # bounded
        messages = [
            Message(0, batch_no * 500 + i, encoded(event_id=f"w-{batch_no}-{i}", shop=f"scrape-{i % load.shops}",
                                                   event_type=types[i // load.shops % 4], time=load.time))
            for i in range(500)
        ]  # fmt: skip
        apply_batch(engine, decode_batch("scrape-bench", messages, 10**6), datetime.now(UTC), plans)
        with counter.get_lock():
            counter.value += 500
        batch_no += 1


def scrape_event(i: int, load: Load) -> tuple[bytes, bytes]:
    """(key, value) of the i-th event: together they move every key result of every shop
    (each shop gets every type in turn)."""
    shop = f"scrape-{i % load.shops}"
    value = encoded(event_id=f"k-{i}", shop=shop, event_type=TYPES[i // load.shops % len(TYPES)],
                    time=load.time)  # fmt: skip
    return shop.encode(), value


def producer(bootstrap: str, topic: str, rate: float, seconds: float, load: Load) -> None:
    """Produces at a steady `rate` events/s for at most `seconds` (runs as a process)."""
    events = (scrape_event(i, load) for i in range(int(rate * seconds)))  # bounded, made as sent
    asyncio.run(produce(bootstrap, topic, events, rate=rate))


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
def writing(
    args: argparse.Namespace, url: str, work: Path, load: Load
) -> Iterator[Callable[[], int]]:
    """Starts the writer; yields how to read how many events it has written so far."""
    if args.writer == "none":
        yield lambda: 0
    elif args.writer == "direct":
        stop, written = multiprocessing.Event(), multiprocessing.Value("i", 0)
        process = multiprocessing.Process(
            target=writer, args=(url, stop, written, load), daemon=True
        )
        process.start()
        try:
            yield lambda: int(written.value)
        finally:
            stop.set()
            process.join(30)
    else:
        yield from _worker_writing(args, url, work, load)


def _worker_writing(
    args: argparse.Namespace, url: str, work: Path, load: Load
) -> Iterator[Callable[[], int]]:
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
        target=producer, args=(kafka.bootstrap, topic, args.rate, 1200.0, load), daemon=True
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
