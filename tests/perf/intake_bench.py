"""`make bench`: the HTTP intake's throughput against a raw aiokafka producer, in one run.

Against one local Kafka broker (loopback only), with N events (default 200,000) of the
bench's mix, spread over 6 shops (one per partition, one token each), measures:
- the baseline: a raw aiokafka producer (acks=all, idempotent, the intake's linger) sending
  the same (key, value) pairs to a fresh topic, events/s (after 100,000 events to another
  topic: a broker just started is slower);
- `okrflow intake` (a real process, SQLite in a temp dir, tokens made with the CLI) driven by
  concurrent keep-alive HTTP clients posting pre-encoded batches of 100 CloudEvents
  (application/cloudevents-batch+json) until N events were accepted (202): events/s and the
  ratio to the raw producer (the issue's goal: at least 0.3, printed, not asserted);
- then the intake at half that rate, paced open loop for a bounded time: p50/p99 of each
  request's latency (client side, from the time it was due to be sent);
- CPU seconds per 1,000 events of the intake process, of the broker, and of this process (the
  raw producer, then the HTTP clients).

Usage: python -m tests.perf.intake_bench [--events N] [--concurrency C] [--seconds S]
                                         [--json PATH] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from okrflow.devkafka import LocalKafka
from okrflow.settings import BUNDLED_KAFKA_CONFIG
from tests.integration.processes import okrflow_env
from tests.perf.bench import PARTITIONS, REPO, SHOPS, cpu_seconds, make_events
from tests.perf.scratch import add_keep_argument, scratch_dir
from tests.services import free_port

BATCH = 100
BATCH_TYPE = "application/cloudevents-batch+json"


@dataclass
class Request:
    token_header: str
    body: bytes
    events: int


@dataclass
class Phase:
    """What one load phase measured."""

    events: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=dict)  # status -> count
    dropped: int = 0  # paced requests not sent: too many already in flight
    intake_cpu: float = 0.0
    broker_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def per_1k(self, cpu: float) -> float:
        return cpu / self.events * 1000 if self.events else float("nan")


class CpuMeter:
    """CPU seconds used by the intake, the broker and this process between start and stop."""

    def __init__(self, intake_pid: int | None, broker_pid: int | None) -> None:
        self.pids = (intake_pid, broker_pid)
        self.started = (0.0, 0.0, 0.0)

    def _now(self) -> tuple[float, float, float]:
        intake, broker = (cpu_seconds(p) if p else float("nan") for p in self.pids)
        return intake, broker, time.process_time()

    def start(self) -> None:
        self.started = self._now()

    def stop(self, phase: Phase) -> None:
        now = self._now()
        phase.intake_cpu, phase.broker_cpu, phase.client_cpu = (
            b - a for a, b in zip(self.started, now, strict=True)
        )


def compact(events: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The events as the intake produces them (msgspec's compact JSON)."""
    return [(k, msgspec.json.encode(msgspec.json.decode(v))) for k, v in events]


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


async def raw_producer(
    bootstrap: str, topic: str, events: Sequence[tuple[bytes, bytes]], meter: CpuMeter
) -> Phase:
    """The same (key, value) pairs with the intake's producer settings (okrflow.intake.producer),
    as fast as aiokafka takes them: at most 20,000 unacknowledged."""
    warm_up = topic + "-warm-up"
    await create_topic(bootstrap, warm_up)
    await create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )
    await producer.start()

    async def send_all(topic: str, events: Sequence[tuple[bytes, bytes]]) -> None:
        pending = []
        for key, value in events:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)

    try:
        # A broker just started runs slower (the JVM compiles as it goes): warm it up, so the
        # baseline is not measured on a colder broker than the intake.
        await send_all(warm_up, events[:100_000])
        await (await producer.send(topic, b"{}", key=b"warm-up"))  # this topic's metadata
        phase = Phase()
        meter.start()
        started = time.perf_counter()
        await send_all(topic, events)
        phase.seconds = time.perf_counter() - started
        meter.stop(phase)
        phase.events = len(events)
        return phase
    finally:
        await producer.stop()


def requests_for(events: Sequence[tuple[bytes, bytes]], tokens: dict[str, str]) -> list[Request]:
    """Batches of BATCH events of one shop each, shops taking turns; bodies encoded now."""
    by_shop: dict[bytes, list[bytes]] = {}
    for key, value in events:
        by_shop.setdefault(key, []).append(value)
    per_shop = [
        [
            Request(f"Bearer {tokens[key.decode()]}", b"[" + b",".join(chunk) + b"]", len(chunk))
            for chunk in (values[i : i + BATCH] for i in range(0, len(values), BATCH))
        ]
        for key, values in by_shop.items()
    ]
    out = []
    for round_ in range(max(len(r) for r in per_shop)):
        out.extend(r[round_] for r in per_shop if round_ < len(r))
    return out


class Clients:
    """httpx clients of one keep-alive connection each, handed out one per request in flight.

    One client per connection rather than one client with a pool of many: httpcore scans its
    whole pool at every request's start and end (measured here: 2.7 ms of CPU a request with
    12 connections in one pool, 1.5 ms with one connection a client), and on 2 cores the
    client's CPU is taken from the intake and the broker."""

    def __init__(self, base: str, limit: int) -> None:
        self.base = base
        self.limit = limit
        self.idle: list[httpx.AsyncClient] = []
        self.all: list[httpx.AsyncClient] = []
        self.tls = ssl.create_default_context()  # unused (http://), but made per client if not

    async def post(self, request: Request) -> int:
        if self.idle:
            client = self.idle.pop()
        elif len(self.all) < self.limit:
            client = httpx.AsyncClient(
                base_url=self.base,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                timeout=30,
                verify=self.tls,
                trust_env=False,  # no proxy: loopback only
            )
            self.all.append(client)
        else:
            raise RuntimeError(f"more than {self.limit} requests in flight")
        try:
            response = await client.post(
                "/v1/events",
                content=request.body,
                headers={"Authorization": request.token_header, "Content-Type": BATCH_TYPE},
            )
        finally:
            self.idle.append(client)
        return response.status_code

    async def warm_up(self, requests: Sequence[Request], count: int) -> None:
        """Connections opened, the intake's token cache filled: `count` requests at once."""
        statuses = await asyncio.gather(*(self.post(r) for r in requests[:count]))
        if any(s != 202 for s in statuses):
            raise RuntimeError(f"warm-up answered {sorted(set(statuses))}")

    async def aclose(self) -> None:
        for client in self.all:
            await client.aclose()


async def closed_loop(
    base: str, requests: Sequence[Request], concurrency: int, meter: CpuMeter, limit_s: float
) -> Phase:
    """`concurrency` senders, each posting its next request as soon as the last is answered,
    until every request was accepted once (or `limit_s` passed)."""
    phase = Phase()
    clients = Clients(base, concurrency)
    try:
        await clients.warm_up(requests, concurrency)
        next_index = 0
        deadline = time.monotonic() + limit_s

        async def sender() -> None:
            nonlocal next_index
            while next_index < len(requests) and time.monotonic() < deadline:
                request = requests[next_index]
                next_index += 1
                sent = time.perf_counter()
                status = await clients.post(request)
                phase.latencies.append(time.perf_counter() - sent)
                if status == 202:
                    phase.events += request.events
                else:
                    phase.refused[status] = phase.refused.get(status, 0) + 1

        meter.start()
        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        phase.seconds = time.perf_counter() - started
        meter.stop(phase)
    finally:
        await clients.aclose()
    return phase


async def open_loop(
    base: str, requests: Sequence[Request], per_second: float, seconds: float,
    meter: CpuMeter, max_in_flight: int = 256,
) -> Phase:  # fmt: skip
    """Requests sent at a steady `per_second`, whether or not earlier ones were answered, for
    `seconds`; each one's latency runs from when it was due (so a late sender counts too). At
    most `max_in_flight` at once: a request due beyond that is dropped and counted."""
    phase = Phase()
    count = max(1, int(per_second * seconds))
    in_flight: set[asyncio.Task[None]] = set()
    clients = Clients(base, max_in_flight)
    try:
        await clients.warm_up(requests, 4)

        async def one(request: Request, due: float) -> None:
            status = await clients.post(request)
            phase.latencies.append(time.perf_counter() - due)
            if status == 202:
                phase.events += request.events
            else:
                phase.refused[status] = phase.refused.get(status, 0) + 1

        meter.start()
        started = time.perf_counter()
        for i in range(count):
            due = started + i / per_second
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) >= max_in_flight:
                phase.dropped += 1
                continue
            task = asyncio.create_task(one(requests[i % len(requests)], due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=60)
        phase.seconds = time.perf_counter() - started
        meter.stop(phase)
    finally:
        await clients.aclose()
    return phase


def quantile(samples: Sequence[float], q: float) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=1000, method="inclusive")[round(q * 1000) - 1]


def create_token(env: dict[str, str], shop: str) -> str:
    created = subprocess.run(
        [sys.executable, "-m", "okrflow", "tokens", "create", "--shop", shop, "--name", "bench"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if created.returncode != 0:
        raise RuntimeError(f"okrflow tokens create: {created.stderr.strip()}")
    return created.stdout.strip().splitlines()[-1]


def wait_ready(base: str, intake: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if intake.poll() is not None:
            raise RuntimeError(f"okrflow intake exited with {intake.returncode}; see {log}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"okrflow intake not ready after {timeout}s; see {log}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=12, help="requests in flight")
    parser.add_argument(
        "--seconds", type=float, default=20, help="length of the half-rate latency run"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument(
        "--profile", type=Path,
        help="record the intake with py-spy (speedscope) into this folder (sampling slows the "
        "intake: the figures of such a run are not comparable)",
    )  # fmt: skip
    add_keep_argument(parser)
    args = parser.parse_args()
    if args.events < 10 * BATCH * len(SHOPS):
        parser.error(f"--events: at least {10 * BATCH * len(SHOPS):,}")
    console = Console(width=160)
    work = scratch_dir("okrflow-intake-bench-", args.keep)
    kafka = LocalKafka(
        BUNDLED_KAFKA_CONFIG,
        REPO / ".cache" / "kafka",
        work / "kafka",
        free_port(),
        free_port(),
        heap="1g",
    )
    console.print(f"starting Kafka on {kafka.bootstrap} ...")
    kafka.start(120)
    intake = profiler = None
    finished = False
    try:
        broker_pid = kafka.status().pid
        events = compact(make_events(args.events))
        console.print(f"raw aiokafka producer: {args.events:,} events, acks=all, idempotent ...")
        raw = asyncio.run(
            raw_producer(kafka.bootstrap, "raw-producer", events, CpuMeter(None, broker_pid))
        )
        console.print(f"  {raw.rate:,.0f} events/s")

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = okrflow_env(
            database_url=f"sqlite:///{work / 'intake.db'}",
            kafka_bootstrap=kafka.bootstrap,
            events_topic="intake-events",
            dlq_topic="intake-events.dlq",
            events_partitions=PARTITIONS,
            intake_host="127.0.0.1",
            intake_port=port,
            log_level="WARNING",
        )
        tokens = {shop: create_token(env, shop) for shop in SHOPS}
        requests = requests_for(events, tokens)
        log = work / "intake.log"
        with log.open("wb") as out:
            intake = subprocess.Popen(
                [sys.executable, "-m", "okrflow", "intake"], env=env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_ready(base, intake, log, 60)
        meter = CpuMeter(intake.pid, broker_pid)
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            profiler = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(intake.pid),
                 "--rate", "200", "--format", "speedscope",
                 "--output", str(args.profile / "intake.speedscope.json")],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            )  # fmt: skip
            time.sleep(1)
        console.print(
            f"okrflow intake, {args.concurrency} requests in flight, {BATCH} events each ..."
        )
        top = asyncio.run(closed_loop(base, requests, args.concurrency, meter, 600))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            profiler.wait(120)
            profiler = None
        if top.refused or top.events < args.events:
            raise RuntimeError(
                f"accepted {top.events:,} of {args.events:,} events; refused {top.refused}"
            )
        ratio = top.rate / raw.rate
        console.print(f"  {top.rate:,.0f} events/s, {ratio:.2f}x the raw producer")

        half = top.rate / 2
        console.print(f"okrflow intake paced at {half:,.0f} events/s for {args.seconds:g}s ...")
        paced = asyncio.run(open_loop(base, requests, half / BATCH, args.seconds, meter))
        if paced.refused:
            raise RuntimeError(f"paced run refused {paced.refused}")
        p50, p99 = quantile(paced.latencies, 0.5), quantile(paced.latencies, 0.99)

        def ms(x: float) -> str:
            return f"{x * 1000:.1f} ms"

        def cpu(phase: Phase, value: float) -> str:
            return "" if math.isnan(value) else f"{phase.per_1k(value):.3f}"

        table = Table(
            title=(
                f"okrflow intake benchmark: {args.events:,} events, {len(SHOPS)} shops, "
                f"{PARTITIONS} partitions, batches of {BATCH}, {args.concurrency} in flight; "
                f"{os.cpu_count()} CPUs"
            )
        )
        for col in (
            "run", "events/s", "ratio to raw", "p50 / request", "p99 / request",
            "intake CPU s/1k ev", "broker CPU s/1k ev", "client CPU s/1k ev",
        ):  # fmt: skip
            table.add_column(col, justify="right")
        table.add_row(
            "raw aiokafka producer", f"{raw.rate:,.0f}", "1.00", "", "", "",
            cpu(raw, raw.broker_cpu), cpu(raw, raw.client_cpu),
        )  # fmt: skip
        table.add_row(
            "okrflow intake, max", f"{top.rate:,.0f}", f"{ratio:.2f}",
            ms(quantile(top.latencies, 0.5)), ms(quantile(top.latencies, 0.99)),
            cpu(top, top.intake_cpu), cpu(top, top.broker_cpu), cpu(top, top.client_cpu),
        )  # fmt: skip
        table.add_row(
            "okrflow intake, half rate", f"{paced.rate:,.0f}", f"{paced.rate / raw.rate:.2f}",
            ms(p50), ms(p99), cpu(paced, paced.intake_cpu), cpu(paced, paced.broker_cpu),
            cpu(paced, paced.client_cpu),
        )  # fmt: skip
        console.print(table)
        console.print(
            f"goal: intake at least 0.3x the raw producer: {ratio:.2f}x "
            f"({'met' if ratio >= 0.3 else 'NOT met'}); half-rate run: {len(paced.latencies):,} "
            f"requests, {paced.dropped} dropped (over 256 in flight)"
        )
        if args.json is not None:
            figures: dict[str, Any] = {
                "events": args.events,
                "batch": BATCH,
                "concurrency": args.concurrency,
                "cpus": os.cpu_count(),
                "raw_producer_events_per_s": round(raw.rate, 1),
                "intake_events_per_s": round(top.rate, 1),
                "intake_ratio": round(ratio, 4),
                "rate_for_latency": round(half, 1),
                "achieved_rate_for_latency": round(paced.rate, 1),
                "p50_ms": round(p50 * 1000, 2),
                "p99_ms": round(p99 * 1000, 2),
                "latency_requests": len(paced.latencies),
                "latency_dropped": paced.dropped,
                "intake_cpu_s_per_1k_events": round(top.per_1k(top.intake_cpu), 4),
                "intake_cpu_s_per_1k_events_half_rate": round(paced.per_1k(paced.intake_cpu), 4),
                "broker_cpu_s_per_1k_events_raw": round(raw.per_1k(raw.broker_cpu), 4),
                "broker_cpu_s_per_1k_events_intake": round(top.per_1k(top.broker_cpu), 4),
                "raw_producer_cpu_s_per_1k_events": round(raw.per_1k(raw.client_cpu), 4),
            }
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
            console.print(f"figures written to {args.json}")
        finished = True
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(120)
        if intake is not None and intake.poll() is None:
            intake.terminate()
            try:
                intake.wait(60)
            except subprocess.TimeoutExpired:
                intake.kill()
                intake.wait()
        kafka.stop()
        if finished:
            shutil.rmtree(work, ignore_errors=True)  # the broker's data: ~100 MB a run
        else:
            console.print(f"the broker's and the intake's logs are kept in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
