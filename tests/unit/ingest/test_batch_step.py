"""The consumer core on its own: batches close by size and by time, one write is in flight,
each batch goes write -> dead letters -> database commit -> offsets, and a flush (revocation)
finishes all."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Mapping, Sequence

import pytest

from okrflow.counting.decode import Message, MessageLike, Rejected
from okrflow.events import InvalidEvent
from okrflow.ingest.batch_step import BatchStep

Pending = tuple[int, list[Rejected], dict[int, int]]  # first offset, dead letters, offsets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class RecordingSink:
    """Logs every call; `write` blocks until the test releases it."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.release: dict[int, asyncio.Event] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_dead_letters = False

    async def prepare(self, records: Sequence[MessageLike]) -> list[MessageLike]:
        self.log.append(f"prepare {[r.offset for r in records]}")
        return list(records)

    async def write(self, prepared: list[MessageLike]) -> Pending:
        first = prepared[0].offset
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.log.append(f"write {first}")
        await self.release.setdefault(first, asyncio.Event()).wait()
        self.log.append(f"written {first}")
        bad = [
            Rejected(r.partition, r.offset, r.value, InvalidEvent("not_json", "x"))
            for r in prepared
            if r.value == b"bad"
        ]
        return first, bad, {0: prepared[-1].offset + 1}

    async def dead_letter(self, pending: Pending) -> None:
        self.log.append(f"dead letters {[r.offset for r in pending[1]]}")
        if self.fail_dead_letters:
            raise ConnectionError("broker unreachable")

    async def commit(self, pending: Pending) -> Mapping[int, int]:
        self.in_flight -= 1
        self.log.append(f"db commit {pending[0]}")
        return pending[2]

    async def abort(self, pending: Pending) -> None:
        self.in_flight -= 1
        self.log.append(f"db rollback {pending[0]}")


def _records(first: int, n: int, bad: int | None = None) -> list[Message]:
    return [Message(0, o, b"bad" if o == bad else b"{}") for o in range(first, first + n)]


def _step(
    log: list[str], clock: Clock, max_size: int = 3, max_seconds: float = 1.0
) -> tuple[BatchStep[list[MessageLike], Pending], RecordingSink]:
    sink = RecordingSink(log)

    async def commit(offsets: Mapping[int, int]) -> None:
        log.append(f"commit {dict(offsets)}")

    step = BatchStep(sink, commit, max_size=max_size, max_seconds=max_seconds, clock=clock)
    return step, sink


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_batch_closes_by_size() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        step, sink = _step(log, Clock(), max_size=3)
        step.add(_records(0, 2))
        await step.poll()
        assert log == [] and step.pending == 2  # 2 of 3, no time passed
        step.add(_records(2, 2))
        await step.poll()
        await _settle()
        assert step.pending == 1  # the batch took 3; the 4th opens the next
        sink.release.setdefault(0, asyncio.Event()).set()
        await _settle()
        await step.poll()
        return log

    assert asyncio.run(run()) == [
        "prepare [0, 1, 2]", "write 0", "written 0", "dead letters []", "db commit 0", "commit {0: 3}",
    ]  # fmt: skip


def test_a_fetch_larger_than_a_batch_is_cut_into_full_batches() -> None:
    async def run() -> tuple[list[str], int]:
        log: list[str] = []
        step, sink = _step(log, Clock(), max_size=3)
        step.add(_records(0, 7))  # one fetch: two full batches and one record over
        await step.poll()
        await _settle()
        pending = step.pending
        for first in (0, 3, 6):
            sink.release.setdefault(first, asyncio.Event()).set()
        await step.flush()
        return log, pending

    log, pending = asyncio.run(run())
    assert pending == 1
    assert [line for line in log if line.startswith("prepare")] == [
        "prepare [0, 1, 2]", "prepare [3, 4, 5]", "prepare [6]",
    ]  # fmt: skip
    assert _after_db_commits(log) and log[-1] == "commit {0: 7}"


def _after_db_commits(log: list[str]) -> bool:
    """Whether every Kafka commit comes after the database commit of the offsets it names."""
    applied = 0
    for line in log:
        if line.startswith("db commit"):
            applied += 1
        elif line.startswith("commit") and applied == 0:
            return False
    return True


def test_a_kafka_commit_that_never_returns_blocks_neither_batches_nor_a_revocation() -> None:
    """During a rebalance a Kafka commit can wait for the rebalance, which waits for the
    revocation hook: the batch step must never wait for one there."""

    async def run() -> list[str]:
        log: list[str] = []
        sink = RecordingSink(log)
        never = asyncio.Event()

        async def hanging_commit(offsets: Mapping[int, int]) -> None:
            log.append(f"commit {dict(offsets)} (hangs)")
            await never.wait()

        step = BatchStep(sink, hanging_commit, max_size=2, max_seconds=60, clock=Clock())
        for first in (0, 2, 4):
            sink.release.setdefault(first, asyncio.Event()).set()
        step.add(_records(0, 5))  # two full batches, one record open
        await step.poll()
        await asyncio.wait_for(step.flush(offsets=False), 5)  # the revocation hook
        assert step.pending == 0 and not step.writing
        return log

    log = asyncio.run(run())
    assert [line for line in log if line.startswith("db commit")] == [
        "db commit 0", "db commit 2", "db commit 4",
    ]  # fmt: skip
    # One Kafka commit at a time (what was applied meanwhile merged into the next); the
    # offsets left when the partitions were revoked are dropped.
    assert len([line for line in log if line.startswith("commit")]) == 1


def test_a_batch_closes_by_time_on_the_injected_clock() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        clock = Clock()
        step, _ = _step(log, clock, max_size=100, max_seconds=1.0)
        step.add(_records(0, 1))
        clock.now += 0.4
        assert abs(step.wait_seconds(5.0) - 0.6) < 1e-9
        await step.poll()
        assert log == []
        clock.now += 0.6
        assert step.due()
        await step.poll()
        await _settle()
        return log

    assert asyncio.run(run()) == ["prepare [0]", "write 0"]


def test_one_write_in_flight_and_batches_finish_in_order() -> None:
    async def run() -> tuple[list[str], int]:
        log: list[str] = []
        step, sink = _step(log, Clock(), max_size=2)
        step.add(_records(0, 2))
        await step.poll()  # batch 0 closed: the caller goes on at once
        await _settle()
        step.add(_records(2, 2))
        await step.poll()  # batch 2 closed and prepared while batch 0 is applied
        await _settle()
        assert log == ["prepare [0, 1]", "write 0", "prepare [2, 3]"]
        step.add(_records(4, 2))
        closing = asyncio.ensure_future(step.poll())  # a third: waits for the oldest
        await _settle()
        assert not closing.done() and step.pending == 2
        sink.release.setdefault(0, asyncio.Event()).set()
        await closing
        await _settle()
        for first in (2, 4):
            sink.release.setdefault(first, asyncio.Event()).set()
        await step.flush()
        return log, sink.most_in_flight

    log, most = asyncio.run(run())
    assert most == 1
    assert log == [
        "prepare [0, 1]", "write 0", "prepare [2, 3]",  # prepared while batch 0 is applied
        "written 0", "dead letters []", "db commit 0", "commit {0: 2}",
        "write 2", "prepare [4, 5]", "written 2", "dead letters []", "db commit 2", "commit {0: 4}",
        "write 4", "written 4", "dead letters []", "db commit 4", "commit {0: 6}",
    ]  # fmt: skip


def test_records_keep_coming_while_a_batch_is_applied() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        clock = Clock()
        step, sink = _step(log, clock, max_size=100, max_seconds=1.0)
        step.add(_records(0, 5))
        clock.now += 1.0
        await step.poll()  # closed; its write blocks until released
        await _settle()
        assert log == ["prepare [0, 1, 2, 3, 4]", "write 0"] and step.writing
        step.add(_records(5, 3))  # the next batch opens, and closes, while the first is applied
        clock.now += 1.0
        await asyncio.wait_for(step.poll(), 5)  # does not wait for batch 0's write
        await _settle()
        step.add(_records(8, 1))
        assert step.pending == 1
        for first in (0, 5, 8):
            sink.release.setdefault(first, asyncio.Event()).set()
        await step.flush()
        return log

    assert asyncio.run(run()) == [
        "prepare [0, 1, 2, 3, 4]", "write 0", "prepare [5, 6, 7]",
        "written 0", "dead letters []", "db commit 0", "commit {0: 5}",
        "write 5", "written 5", "dead letters []", "db commit 5", "commit {0: 8}", "prepare [8]",
        "write 8", "written 8", "dead letters []", "db commit 8", "commit {0: 9}",
    ]  # fmt: skip


def test_with_two_batches_in_flight_the_open_batch_closes_only_when_full() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        clock = Clock()
        step, sink = _step(log, clock, max_size=4, max_seconds=1.0)
        for first in (0, 1):  # two batches in flight: 0 written, 1 prepared
            step.add(_records(first, 1))
            clock.now += 1.0
            await step.poll()
            await _settle()
        step.add(_records(2, 1))
        clock.now += 1.0
        assert not step.due()  # old enough, but only one more batch may be in flight
        await asyncio.wait_for(step.poll(), 5)  # and the caller is not held
        step.add(_records(3, 2))
        clock.now += 5.0
        assert not step.due()  # 3 of 4
        sink.release.setdefault(0, asyncio.Event()).set()
        await _settle()  # batch 0 done: a place is free, the old batch closes
        assert step.due()
        await step.poll()
        assert step.pending == 0
        step.add(_records(5, 4))  # full while two are in flight: closing waits for one
        closing = asyncio.ensure_future(step.poll())
        await _settle()
        assert not closing.done()
        for first in (1, 2, 5):
            sink.release.setdefault(first, asyncio.Event()).set()
        await closing
        await step.flush()
        return log

    log = asyncio.run(run())
    assert [e for e in log if e.startswith(("prepare", "commit"))] == [
        "prepare [0]", "prepare [1]", "commit {0: 1}", "prepare [2, 3, 4]", "commit {0: 2}",
        "commit {0: 5}", "prepare [5, 6, 7, 8]", "commit {0: 9}",
    ]  # fmt: skip


def test_a_failed_batch_stops_the_batches_after_it_unwritten() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        step, sink = _step(log, Clock(), max_size=2)
        sink.fail_dead_letters = True
        step.add(_records(0, 2, bad=0))
        await step.poll()
        await _settle()
        step.add(_records(2, 2))
        await step.poll()  # prepared, waiting for batch 0
        await _settle()
        sink.release.setdefault(0, asyncio.Event()).set()
        await _settle()
        with pytest.raises(ConnectionError):
            await step.poll()
        assert not step.writing
        await step.finish_writing()  # nothing left in flight: returns quietly
        return log

    assert asyncio.run(run()) == [
        "prepare [0, 1]", "write 0", "prepare [2, 3]", "written 0", "dead letters [0]",
        "db rollback 0",
    ]  # fmt: skip


def test_the_error_a_later_batch_shares_is_not_logged_again_as_never_retrieved() -> None:
    async def run() -> list[str]:
        unhandled: list[str] = []
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: unhandled.append(str(context["message"]))
        )
        log: list[str] = []
        step, sink = _step(log, Clock(), max_size=2)
        sink.fail_dead_letters = True
        step.add(_records(0, 2, bad=0))
        await step.poll()
        step.add(_records(2, 2))
        await step.poll()
        await _settle()
        sink.release.setdefault(0, asyncio.Event()).set()
        await _settle()  # the later batch is done too, with the same error from its shield
        with pytest.raises(ConnectionError):
            await step.poll()
        await _settle()
        gc.collect()  # a task's unretrieved exception is reported when the task is collected
        return unhandled

    assert asyncio.run(run()) == []


def test_commit_order_is_apply_then_dead_letters_then_offsets() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        step, sink = _step(log, Clock(), max_size=3)
        step.add(_records(0, 3, bad=1))
        sink.release.setdefault(0, asyncio.Event()).set()
        await step.flush()
        return log

    assert asyncio.run(run()) == [
        "prepare [0, 1, 2]", "write 0", "written 0", "dead letters [1]", "db commit 0", "commit {0: 3}",
    ]  # fmt: skip


def test_flush_on_revoke_finishes_the_write_in_flight_and_the_open_batch() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        step, sink = _step(log, Clock(), max_size=2, max_seconds=60)
        step.add(_records(0, 2))
        await step.poll()  # batch 0 writing
        step.add(_records(2, 1))  # open batch: neither full nor old
        for first in (0, 2):
            sink.release.setdefault(first, asyncio.Event()).set()
        await step.flush()
        assert step.pending == 0 and not step.writing
        return log

    log = asyncio.run(run())
    assert [line for line in log if not line.startswith("commit")] == [
        "prepare [0, 1]", "write 0", "written 0", "dead letters []", "db commit 0",
        "prepare [2]", "write 2", "written 2", "dead letters []", "db commit 2",
    ]  # fmt: skip
    assert _after_db_commits(log) and log[-1] == "commit {0: 3}"  # shutdown: offsets too


def test_finish_writing_leaves_the_open_batch_unapplied() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        step, sink = _step(log, Clock(), max_size=2, max_seconds=60)
        step.add(_records(0, 2))
        await step.poll()
        step.add(_records(2, 1))
        sink.release.setdefault(0, asyncio.Event()).set()
        await step.finish_writing()
        assert step.pending == 1
        return log

    assert asyncio.run(run()) == [
        "prepare [0, 1]", "write 0", "written 0", "dead letters []", "db commit 0", "commit {0: 2}",
    ]  # fmt: skip


def test_a_failed_dead_letter_write_rolls_the_transaction_back_and_commits_nothing() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        step, sink = _step(log, Clock(), max_size=2)
        sink.fail_dead_letters = True
        step.add(_records(0, 2, bad=0))
        sink.release.setdefault(0, asyncio.Event()).set()
        with pytest.raises(ConnectionError):
            await step.flush()
        return log

    assert asyncio.run(run()) == [
        "prepare [0, 1]", "write 0", "written 0", "dead letters [0]", "db rollback 0",
    ]  # fmt: skip
