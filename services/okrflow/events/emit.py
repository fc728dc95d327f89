"""`okrflow emit`: produce CloudEvents from a JSON-lines file to the events topic."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.failures import one_line
from okrflow.kafkaclient import client_kwargs
from okrflow.ops.startup import wait_for_kafka
from okrflow.settings import Settings
from okrflow.topics import TopicLayoutError, ensure_topics

# Deepest nesting of arrays and objects a line may have. Python's decoders recurse once per
# level and give up near 1,000 (the worker reports such events as `too_deep`); events need a
# handful of levels.
MAX_DEPTH = 500

# A JSON string (the unrolled form: no backtracking per character), and a bracket.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(r"[\[\]{}]")


@dataclass(frozen=True)
class Line:
    number: int
    value: bytes
    key: bytes | None


@dataclass
class EmitReport:
    sent: int = 0
    problems: list[str] = field(default_factory=list)  # "LINE: message", one per skipped line


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text` (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _too_deep(text: str) -> bool:
    # Counting brackets is cheap; only lines with that many are scanned.
    return text.count("[") + text.count("{") > MAX_DEPTH and nesting_depth(text) > MAX_DEPTH


def parse_lines(lines: Iterable[str | bytes], report: EmitReport) -> Iterator[Line]:
    """JSON objects to send, keyed by their `shop`; other lines go to `report.problems`."""
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                report.problems.append(f"{number}: not UTF-8: {exc.reason} at byte {exc.start + 1}")
                continue
        else:
            text = raw
        text = text.rstrip("\r\n")  # so an error's column is the one in the file
        if not text.strip():
            continue
        if _too_deep(text):
            report.problems.append(f"{number}: JSON nested deeper than {MAX_DEPTH} levels")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            report.problems.append(f"{number}: not JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:  # within MAX_DEPTH, yet the stack ran out
            report.problems.append(f"{number}: JSON nested too deeply to decode")
            continue
        if not isinstance(obj, dict):
            report.problems.append(f"{number}: not a JSON object")
            continue
        shop = obj.get("shop")
        key = shop.encode() if isinstance(shop, str) else None
        yield Line(number, text.strip().encode(), key)


def _refused(number: int, exc: BaseException) -> str:
    return f"{number}: refused by Kafka: {one_line(exc)}"


async def emit_lines(
    settings: Settings, lines: Iterable[str | bytes], chunk: int = 5000
) -> EmitReport:
    """Send every JSON-object line (key = shop) and wait for the broker's acknowledgement.

    A line that cannot be sent (e.g. larger than the broker's maximum message size) is
    reported in `report.problems` and skipped; the other lines are still sent."""
    report = EmitReport()
    try:
        await wait_for_kafka(settings, lambda: ensure_topics(settings))
    except TopicLayoutError as exc:
        raise OperatorError(ExitCode.KAFKA_LAYOUT, str(exc)) from None
    producer = AIOKafkaProducer(
        **client_kwargs(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    pending: list[tuple[int, asyncio.Future[object]]] = []

    async def settle() -> None:
        outcomes = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        for (number, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                report.problems.append(_refused(number, outcome))
            else:
                report.sent += 1
        pending.clear()

    try:
        for line in parse_lines(lines, report):
            try:
                sent = await producer.send(settings.events_topic, line.value, key=line.key)
            except KafkaError as exc:  # refused before it left (e.g. larger than a request)
                report.problems.append(_refused(line.number, exc))
                continue
            pending.append((line.number, sent))
            if len(pending) >= chunk:
                await settle()
        await settle()
    finally:
        await producer.stop()
    report.problems.sort(key=lambda problem: int(problem.split(":", 1)[0]))
    return report
