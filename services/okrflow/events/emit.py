"""`okrflow emit`: produce CloudEvents from a JSON-lines file to the events topic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from okrflow.settings import Settings
from okrflow.topics import ensure_topics


@dataclass(frozen=True)
class Line:
    number: int
    value: bytes
    key: bytes | None


@dataclass
class EmitReport:
    sent: int = 0
    problems: list[str] = field(default_factory=list)  # "LINE: message", one per skipped line


def parse_lines(lines: Iterable[str], report: EmitReport) -> Iterator[Line]:
    """JSON objects to send, keyed by their `shop`; other lines go to `report.problems`."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            report.problems.append(f"{number}: not JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            report.problems.append(f"{number}: not a JSON object")
            continue
        shop = obj.get("shop")
        key = shop.encode() if isinstance(shop, str) else None
        yield Line(number, text.strip().encode(), key)


async def emit_lines(settings: Settings, lines: Iterable[str], chunk: int = 5000) -> EmitReport:
    """Send every JSON-object line (key = shop) and wait for the broker's acknowledgement."""
    report = EmitReport()
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        pending: list[asyncio.Future[object]] = []
        for line in parse_lines(lines, report):
            pending.append(await producer.send(settings.events_topic, line.value, key=line.key))
            if len(pending) >= chunk:
                await asyncio.gather(*pending)
                report.sent += len(pending)
                pending.clear()
        await asyncio.gather(*pending)
        report.sent += len(pending)
    finally:
        await producer.stop()
    return report
