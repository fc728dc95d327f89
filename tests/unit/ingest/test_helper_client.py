"""The worker's side of the counting helper (okrflow.ingest.helper_client) with a real helper
process and no Kafka: what it sends (the packed batch and, when the helper lacks them, the
plans) and gets back (the counted batch), and what happens when the helper is killed: the
worker notices, logs it once, counts its batches itself, and starts a new helper a minute
later."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from okrflow.counting.decode import Message, decode_batch
from okrflow.ingest.clock import Clock
from okrflow.ingest.helper_client import RETRY_AFTER_SECONDS, CountingHelper
from okrflow.ingest.helper_protocol import CountedBatch, count_batch
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.ingest.plan_cache import LoadedPlans
from okrflow.ingest.prepared import PreparedBatch
from okrflow.ingest.sink import HELPER_MIN_RECORDS, OkrflowSink
from okrflow.settings import Settings
from tests.unit.counting.test_series_oracle import INDEX, PLANS
from tests.unit.ingest.test_helper_protocol import MESSAGES, _sale
from tests.unit.ingest.test_sink import FakeDeadLetters, FakeWriter

SETTINGS = Settings(_env_file=None, events_topic="t")  # type: ignore[call-arg]
RECORDS = [*MESSAGES, *(Message(i % 3, 100 + i, _sale(i)) for i in range(120))]


class FakeClock(Clock):
    def __init__(self) -> None:
        self.seconds = 5_000.0

    def monotonic(self) -> float:
        return self.seconds


@pytest.fixture
def helper() -> Iterator[tuple[CountingHelper, FakeClock]]:
    clock = FakeClock()
    helper = CountingHelper(SETTINGS, clock)
    yield helper, clock
    helper.close()


def _expected(revision: int) -> CountedBatch:
    batch = decode_batch("t", RECORDS, SETTINGS.max_event_bytes)
    return count_batch(batch, INDEX, revision)


def _helper_pids(helper: CountingHelper) -> list[int]:
    pool = helper._pool
    assert pool is not None
    return list(pool._processes)  # the executor's own record


def test_the_helper_counts_the_batch_it_is_sent_with_the_plans_in_force(
    helper: tuple[CountingHelper, FakeClock],
) -> None:
    counting, _ = helper

    async def run() -> list[CountedBatch | None]:
        return [
            await counting.count(RECORDS, LoadedPlans(3, INDEX, PLANS)),  # plans sent
            await counting.count(RECORDS, LoadedPlans(3, INDEX, PLANS)),  # held: not sent
            await counting.count(RECORDS, LoadedPlans(4, INDEX, PLANS)),  # moved: sent again
        ]

    first, second, third = asyncio.run(run())
    assert first == second == _expected(3)
    assert third == _expected(4)
    assert counting._sent_revision == 4
    [pid] = _helper_pids(counting)
    assert pid != os.getpid()


def test_a_killed_helper_is_noticed_once_and_replaced_a_minute_later(
    helper: tuple[CountingHelper, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    counting, clock = helper
    loaded = LoadedPlans(3, INDEX, PLANS)

    async def run() -> None:
        assert await counting.count(RECORDS, loaded) == _expected(3)
        [pid] = _helper_pids(counting)
        os.kill(pid, signal.SIGKILL)
        _wait_until_gone(pid)
        with caplog.at_level(logging.WARNING, logger="okrflow.ingest.helper_client"):
            # The worker counts these itself (the sink does, on None); none waits for a helper.
            assert await counting.count(RECORDS, loaded) is None
            clock.seconds += RETRY_AFTER_SECONDS - 1
            assert await counting.count(RECORDS, loaded) is None
        failed = [r for r in caplog.records if "counting helper process failed" in r.message]
        assert len(failed) == 1, caplog.text
        assert "BrokenProcessPool" in failed[0].message
        assert counting._pool is None  # no helper while the worker counts itself
        clock.seconds += 1  # a minute after the failure: a new helper, sent the plans again
        assert await counting.count(RECORDS, loaded) == _expected(3)
        [new_pid] = _helper_pids(counting)
        assert new_pid != pid

    asyncio.run(run())


def test_a_closed_helper_counts_nothing(helper: tuple[CountingHelper, FakeClock]) -> None:
    counting, _ = helper
    counting.close()
    assert asyncio.run(counting.count(RECORDS, LoadedPlans(3, INDEX, PLANS))) is None
    assert counting._pool is None


def _wait_until_gone(pid: int) -> None:
    """Until the killed helper is reaped (by the executor) or a zombie."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split()[2] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"helper {pid} still alive")


def test_while_its_helper_is_gone_the_sink_counts_its_batches_itself() -> None:
    settings = Settings(_env_file=None, events_topic="t", worker_counting_process=True)  # type: ignore[call-arg]
    writer = FakeWriter(plans=LoadedPlans(3, INDEX, PLANS))
    sink = OkrflowSink(settings, writer, PipelineMetrics(CollectorRegistry()), FakeDeadLetters())
    records = [*MESSAGES, *(Message(i % 3, 100 + i, _sale(i)) for i in range(HELPER_MIN_RECORDS))]
    assert sink.helper is not None

    async def run() -> tuple[PreparedBatch, PreparedBatch]:
        by_helper = await sink.prepare(records)
        assert sink.helper is not None
        [pid] = _helper_pids(sink.helper)
        os.kill(pid, signal.SIGKILL)
        _wait_until_gone(pid)
        return by_helper, await sink.prepare(records)

    try:
        by_helper, by_worker = asyncio.run(run())
    finally:
        sink.helper.close()
    assert by_helper.counted is not None and by_helper.batch is None
    assert by_worker.counted is None and by_worker.batch is not None  # counted by the worker
    assert by_worker.precounted is not None
    assert by_worker.precounted.deltas == by_helper.counted.deltas
    assert by_worker.dead_letters == by_helper.dead_letters
    assert by_worker.next_offsets == by_helper.next_offsets
