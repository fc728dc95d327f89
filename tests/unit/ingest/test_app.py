"""The worker's rebalance hook: a batch that must stop the worker, found while partitions are
revoked, stops it the way the consumer loop does (its own reason, the writes in flight
finished), instead of escaping into faust as a crash of the rebalance."""

from __future__ import annotations

import asyncio
from typing import Any

from okrflow.ingest.app import IngestWorker
from okrflow.ingest.errors import WorkerFatal


class FailingStep:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def flush(self, *, offsets: bool = True) -> None:
        self.log.append("flush")
        raise WorkerFatal("plan revision changed under the batch: restart the worker")

    async def finish_writing(self) -> None:
        self.log.append("finish writing")


def _worker(log: list[str]) -> IngestWorker:
    worker = IngestWorker.__new__(IngestWorker)  # the hook needs only its step and `fail`
    worker.fatal = None
    worker.step = FailingStep(log)  # type: ignore[assignment]

    def fail(exc: WorkerFatal) -> None:
        log.append(f"fail: {exc}")

    worker.fail = fail  # type: ignore[method-assign]
    return worker


def test_a_fatal_batch_on_revocation_stops_the_worker_with_its_reason() -> None:
    log: list[str] = []
    signal: Any = None
    asyncio.run(_worker(log).on_revoked(None, signal=signal))
    assert log == [
        "flush",
        "finish writing",
        "fail: plan revision changed under the batch: restart the worker",
    ]


def test_a_worker_already_stopping_flushes_nothing_on_revocation() -> None:
    log: list[str] = []
    worker = _worker(log)
    worker.fatal = WorkerFatal("earlier")
    signal: Any = None
    asyncio.run(worker.on_revoked(None, signal=signal))
    assert log == []
