"""The worker's sink on its own, with a fake database writer and a fake clock: a database
that is down is retried with backoff (0.5 s doubling to 30 s) until the worker stops, and a
batch the database refuses is bisected so that only the refused events become dead letters
(no Kafka, no database)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.exc import IntegrityError, OperationalError

from okrflow.counting.decode import DecodedBatch, Message, Rejected
from okrflow.counting.matching import MatchIndex
from okrflow.ingest.clock import Clock
from okrflow.ingest.deadletters import DeadLetterWriter
from okrflow.ingest.metrics import PipelineMetrics
from okrflow.ingest.plan_cache import LoadedPlans
from okrflow.ingest.prepared import PendingBatch, PreparedBatch, WrittenBatch
from okrflow.ingest.sink import OkrflowSink, WorkerStopping
from okrflow.ingest.transaction import BatchResult
from okrflow.settings import Settings
from tests.factories import encoded

TOPIC = "okr.events"
DOWN = OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))


class FakeClock(Clock):
    """Time passes only when the sink waits; `stop_after` waits, the worker is stopping."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.seconds = 1_000.0
        self.waits: list[float] = []
        self.stop_after = stop_after

    def now(self) -> datetime:
        return datetime(2026, 3, 1, 12, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.seconds

    def time(self) -> float:
        return 1_772_000_000.0 + self.seconds

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.seconds += seconds
        if self.stop_after is not None and len(self.waits) >= self.stop_after:
            stop.set()
        return stop.is_set()


@dataclass
class FakeWritten:
    result: BatchResult
    committed: bool = False
    rolled_back: bool = False

    def commit(self) -> None:
        self.committed = True

    def rollback(self) -> None:
        self.rolled_back = True


class FakeWriter:
    """A database that is down for its first `down` writes (-1: always), and that refuses
    any batch holding an event whose id is in `refuses` (like a value too large for an index
    row), in writes and in trials alike."""

    def __init__(
        self, *, down: int = 0, refuses: frozenset[str] = frozenset(),
        plans: LoadedPlans | None = None,
    ) -> None:  # fmt: skip
        self.down = down
        self.refuses = refuses
        self.writes: list[list[int]] = []  # the offsets of each batch the writer was asked
        self.trials: list[list[int]] = []
        self.committed: list[FakeWritten] = []
        self._loaded = plans or LoadedPlans(7, MatchIndex([]), [])

    @property
    def loaded(self) -> LoadedPlans:
        return self._loaded

    def refresh_plans(self) -> LoadedPlans:
        return self._loaded

    def write(
        self, prepared: PreparedBatch, now: datetime, decode: Callable[[], DecodedBatch]
    ) -> WrittenBatch:
        batch = prepared.batch
        assert batch is not None  # no counting helper here
        self.writes.append([d.offset for d in batch.events])
        if self.down:
            self.down -= 1
            raise DOWN
        self._refuse(batch)
        return FakeWritten(BatchResult(counted=len(batch.events), duplicates=0, replayed=0))

    def trial(self, batch: DecodedBatch, now: datetime) -> None:
        self.trials.append([d.offset for d in batch.events])
        self._refuse(batch)

    def commit(self, written: WrittenBatch) -> None:
        assert isinstance(written, FakeWritten)
        written.commit()
        self.committed.append(written)

    def _refuse(self, batch: DecodedBatch) -> None:
        refused = [d.event.id for d in batch.events if d.event.id in self.refuses]
        if refused:
            raise IntegrityError("INSERT", {}, ValueError(f"index row too large: {refused[0]}"))


class FakeDeadLetters(DeadLetterWriter):
    def __init__(self) -> None:
        super().__init__(Settings(_env_file=None))  # type: ignore[call-arg]
        self.written: list[Rejected] = []

    async def write(self, rejected: Sequence[Rejected]) -> int:
        self.written.extend(rejected)
        return len(rejected)


def _sink(writer: FakeWriter, clock: FakeClock) -> tuple[OkrflowSink, FakeDeadLetters]:
    settings = Settings(_env_file=None, events_topic=TOPIC, worker_counting_process=False)  # type: ignore[call-arg]
    metrics = PipelineMetrics(CollectorRegistry())
    dead_letters = FakeDeadLetters()
    return OkrflowSink(settings, writer, metrics, dead_letters, clock=clock), dead_letters


def _records(count: int, invalid: Sequence[int] = ()) -> list[Message]:
    return [
        Message(0, offset, b"{not json" if offset in invalid else encoded(event_id=f"e{offset}"))
        for offset in range(count)
    ]


def _write(sink: OkrflowSink, records: list[Message]) -> PendingBatch:
    async def run() -> PendingBatch:
        return await sink.write(await sink.prepare(records))

    return asyncio.run(run())


def _value(metric: Counter | Gauge) -> float:
    """A metric's value (a counter's `_total`)."""
    value = next(iter(metric.collect())).samples[0].value
    assert isinstance(value, float)
    return value


def test_a_database_that_is_down_is_retried_with_backoff_then_the_batch_is_written() -> None:
    writer, clock = FakeWriter(down=4), FakeClock()
    sink, _ = _sink(writer, clock)
    pending = _write(sink, _records(5))
    assert clock.waits == [0.5, 1, 2, 4]
    assert _value(sink.metrics.database_retries) == 4
    assert writer.writes == [[0, 1, 2, 3, 4]] * 5  # the same batch each time, nothing dropped
    assert pending.written.result.counted == 5 and pending.dead_letters == []
    assert writer.trials == []  # a database that is down is never bisected


def test_at_the_limit_the_pause_stays_at_30_s_until_the_worker_stops() -> None:
    writer, clock = FakeWriter(down=-1), FakeClock(stop_after=10)
    sink, dead_letters = _sink(writer, clock)
    with pytest.raises(WorkerStopping) as stopped:
        _write(sink, _records(3))
    assert clock.waits == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    assert stopped.value.__cause__ is DOWN
    assert len(writer.writes) == 10 and writer.committed == [] and dead_letters.written == []


def test_a_refused_batch_is_bisected_and_only_the_refused_events_are_dead_lettered() -> None:
    writer, clock = FakeWriter(refuses=frozenset({"e3", "e11"})), FakeClock()
    sink, dead_letters = _sink(writer, clock)
    records = _records(16, invalid=[6])
    pending = _write(sink, records)

    assert [(r.offset, r.invalid.reason) for r in pending.dead_letters] == [
        (3, "database_rejected"), (6, "not_json"), (11, "database_rejected"),
    ]  # fmt: skip
    assert "index row too large: e3" in pending.dead_letters[0].invalid.error
    assert pending.dead_letters[0].value == records[3].value  # the message as it came
    kept = [o for o in range(16) if o not in (3, 6, 11)]
    assert writer.writes[-1] == kept and pending.written.result.counted == len(kept)
    assert writer.trials[0] == []  # the batch's own bookkeeping is tried first, alone
    assert len(writer.trials) <= 1 + 2 * 2 * 4  # about 2 log2(n) trials per refused event
    assert (
        clock.waits == [] and _value(sink.metrics.database_retries) == 0
    )  # refused data is not retried

    async def finish() -> None:
        await sink.dead_letter(pending)
        assert await sink.commit(pending) == {0: 16}

    asyncio.run(finish())
    assert dead_letters.written == pending.dead_letters
    assert writer.committed == [pending.written]


def test_a_fault_no_event_causes_is_raised_not_bisected_forever() -> None:
    class Broken(FakeWriter):
        def _refuse(self, batch: DecodedBatch) -> None:
            raise IntegrityError("INSERT", {}, ValueError("applied_offsets is broken"))

    writer = Broken()
    sink, _ = _sink(writer, FakeClock())
    with pytest.raises(IntegrityError, match="applied_offsets is broken"):
        _write(sink, _records(4))
    assert writer.trials == [[]]


def test_a_committed_batch_is_recorded_at_the_clocks_time() -> None:
    writer, clock = FakeWriter(), FakeClock()
    sink, _ = _sink(writer, clock)
    pending = _write(sink, _records(2))
    assert asyncio.run(sink.commit(pending)) == {0: 2}
    assert _value(sink.metrics.last_commit) == clock.time()
    assert pending.prepared.closed_at == clock.time() and pending.started == clock.monotonic()
