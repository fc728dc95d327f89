"""The worker's consumer core: batching rules, one write in flight, and the commit order.

No Kafka client and no faust here: records come in through `add`, and everything leaves
through an injected `BatchSink` and an offset committer, on an injected clock (the unit tests
drive it like getsentry/arroyo's strategy tests). okrflow.ingest.consumer feeds it from faust.

A batch closes when it holds `max_size` records or `max_seconds` after its first record.
While batch N is applied (in a thread), batch N+1 is prepared (decoded and counted) and batch
N+2 gathers records; with two batches in flight it closes only when full. There is never more
than one write in flight, and batches finish in order.

Commit order, for every batch (the one place it is written down):
  1. write: one database transaction counts the batch and records its next offsets as
     applied, and is left open. (Events the database refuses for their values are found by
     the sink, bisecting with rolled-back trials, and become dead letters.)
  2. dead letters: the batch's rejected messages are produced to the dead-letter topic and
     acknowledged by the broker (if that fails, the transaction is rolled back).
  3. database commit: the transaction commits.
  4. offsets: the batch's next offsets are committed to Kafka, in the background (one
     commit at a time, the newest offsets of every batch committed meanwhile merged into the
     next). Nothing waits for it: Kafka's committed offsets only show lag to outside tools,
     and a commit can hang while a rebalance is under way (a revocation that waited for one
     waited for itself). A batch is done at step 3.
A crash between two steps loses nothing and counts nothing twice. Before step 3 nothing is
applied: the worker resumes from the database's applied offsets, decodes the batch again and
finds the same dead letters, which the dead-letter writer skips if they are already in the
topic. After step 3 the batch is applied and its dead letters are in the topic; the worker
resumes after it, whatever Kafka's committed offsets say.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from okrflow.counting.decode import MessageLike

PreparedT = TypeVar("PreparedT")
PendingT = TypeVar("PendingT")
Clock = Callable[[], float]

logger = logging.getLogger(__name__)

# At shutdown, how long the last Kafka commit is waited for (the database has the offsets).
OFFSETS_TIMEOUT_SECONDS = 5.0


class BatchSink(Protocol[PreparedT, PendingT]):
    async def prepare(self, records: Sequence[MessageLike]) -> PreparedT:
        """CPU work on a closed batch, done while the previous batch is applied."""
        ...

    async def write(self, prepared: PreparedT) -> PendingT:
        """Step 1: the batch's database writes, not committed. Raises only when the worker
        must stop."""
        ...

    async def dead_letter(self, pending: PendingT) -> None:
        """Step 2: produce the batch's dead letters and wait for the broker's acks."""
        ...

    async def commit(self, pending: PendingT) -> Mapping[int, int]:
        """Step 3: commit the transaction; returns partition -> next offset."""
        ...

    async def abort(self, pending: PendingT) -> None:
        """Roll the transaction back (step 2 failed)."""
        ...


class OffsetCommitter(Protocol):
    async def __call__(self, offsets: Mapping[int, int]) -> None:
        """Step 4: commit partition -> next offset to Kafka."""
        ...


class BatchStep(Generic[PreparedT, PendingT]):
    """Collects records into batches and drives each through the commit order.

    Each closed batch is driven by a task of its own: prepare, wait for the batch before to
    be committed, write, dead letters, commit, offsets. The caller's loop only adds records
    and closes batches, so records keep coming in while batches are prepared and applied
    (the first records of the next batch are not left waiting in the consumer's buffers).
    A batch holds at most `max_size` records (what a fetch adds beyond opens the next).
    At most two batches are in flight, one applied and the next prepared; while there are
    two, the open batch closes only when full (then it waits for the oldest). A batch whose
    predecessor failed is never written; `poll` raises the first failure."""

    def __init__(
        self, sink: BatchSink[PreparedT, PendingT], commit: OffsetCommitter, *,
        max_size: int, max_seconds: float, clock: Clock = time.monotonic,
    ) -> None:  # fmt: skip
        self.sink = sink
        self.commit = commit
        self.max_size = max_size
        self.max_seconds = max_seconds
        self.clock = clock
        self._pending: list[MessageLike] = []
        self._opened_at = 0.0
        self._in_flight: list[asyncio.Task[None]] = []  # oldest first
        self._preparing = asyncio.Lock()  # prepares run one at a time, in closing order
        self._lock = asyncio.Lock()
        self._offsets: dict[int, int] = {}  # applied, not yet committed to Kafka
        self._committing: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Records waiting for their batch to close."""
        return len(self._pending)

    @property
    def writing(self) -> bool:
        """Whether a closed batch is being prepared or applied."""
        return bool(self._in_flight)

    def add(self, records: Sequence[MessageLike]) -> None:
        """Add fetched records (in offset order per partition) to the open batch."""
        if records:
            if not self._pending:
                self._opened_at = self.clock()
            self._pending.extend(records)

    def wait_seconds(self, longest: float) -> float:
        """How long the caller may wait for more records before polling again."""
        if not self._pending:
            return longest
        return min(longest, max(0.0, self.max_seconds - (self.clock() - self._opened_at)))

    def due(self) -> bool:
        """Whether the open batch must close now: by size, or by time while fewer than two
        batches are in flight (with two, it keeps gathering until it is full or one is done:
        closing it would only wait, and a worker behind its stream would apply ever smaller
        batches, each paying a transaction)."""
        if not self._pending:
            return False
        if len(self._pending) >= self.max_size:
            return True
        running = sum(1 for batch in self._in_flight if not batch.done())
        return running < 2 and self.clock() - self._opened_at >= self.max_seconds

    async def poll(self) -> None:
        """Close the open batch if it is due; raise the failure of a batch in flight."""
        async with self._lock:
            self._reap()
            while self.due():
                await self._close()

    async def when_idle(self, task: Callable[[], Awaitable[None]]) -> None:
        """Run `task` if no batch is in flight (none starts meanwhile)."""
        async with self._lock:
            self._reap()
            if not self._in_flight:
                await task()

    async def flush(self, *, offsets: bool = True) -> None:
        """Close the open batch whatever its size or age, and wait until every batch is
        applied, dead-lettered and committed to the database; with `offsets`, also until the
        Kafka commit of their offsets is done (at shutdown). On revocation (`offsets=False`)
        the offsets not yet committed to Kafka are dropped, never waited for: the next owner
        resumes from the database's offsets."""
        async with self._lock:
            while self._pending:
                await self._close()
            await self._finish_all()
        if offsets:
            await self.commit_offsets()
        else:
            self._offsets.clear()

    async def commit_offsets(self, timeout: float = OFFSETS_TIMEOUT_SECONDS) -> None:
        """Wait until the offsets of every batch done so far are committed to Kafka (or the
        commit failed: logged), at most `timeout` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._committing is not None and not self._committing.done():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                logger.warning("Kafka did not take the last offsets in %.0f s", timeout)
                return
            await asyncio.wait([self._committing], timeout=left)

    async def finish_writing(self) -> None:
        """Finish the batches in flight (if any) without closing the open batch (when the
        worker must stop without applying what it holds)."""
        async with self._lock:
            await self._finish_all()

    async def _close(self) -> None:
        while len(self._in_flight) >= 2:  # one applied, one prepared: wait for the oldest
            await self._finish_oldest()
        # At most `max_size` records: a fetch adds up to a whole poll's records at once, and
        # batches of up to twice the size broke the memory bound. The rest opens the next.
        records, self._pending = self._pending[: self.max_size], self._pending[self.max_size :]
        self._opened_at = self.clock()
        before = self._in_flight[-1] if self._in_flight else None
        self._in_flight.append(asyncio.ensure_future(self._drive(records, before)))

    async def _drive(
        self, records: Sequence[MessageLike], before: asyncio.Task[None] | None
    ) -> None:
        async with self._preparing:
            prepared = await self.sink.prepare(records)
        if before is not None:
            await asyncio.shield(before)  # one write in flight; raises if that batch failed
        pending = await self.sink.write(prepared)
        try:
            await self.sink.dead_letter(pending)
        except BaseException:
            await self.sink.abort(pending)
            raise
        self._commit_later(await self.sink.commit(pending))

    def _commit_later(self, offsets: Mapping[int, int]) -> None:
        """Step 4, in the background: merge `offsets` into the next Kafka commit."""
        self._offsets.update(offsets)
        if self._committing is None or self._committing.done():
            self._committing = asyncio.ensure_future(self._commit_offsets())

    async def _commit_offsets(self) -> None:
        while self._offsets:
            offsets, self._offsets = self._offsets, {}
            try:
                await self.commit(offsets)
            except Exception as exc:  # advisory: the database's offsets are the truth
                logger.warning(
                    "could not commit offsets %s to Kafka (%s: %s); the database has them",
                    offsets, type(exc).__name__, exc,
                )  # fmt: skip

    def _reap(self) -> None:
        """Forget the batches done, oldest first; raise the first failure."""
        while self._in_flight and self._in_flight[0].done():
            self._done(self._in_flight[0])

    async def _finish_oldest(self) -> None:
        oldest = self._in_flight[0]
        await asyncio.wait([oldest])  # not cancelled with the caller
        self._done(oldest)

    async def _finish_all(self) -> None:
        while self._in_flight:
            await self._finish_oldest()

    def _done(self, task: asyncio.Task[None]) -> None:
        """Forget a finished batch; if it failed, cancel the batches after it (none of them
        has written anything: each waits for the one before) and raise its error."""
        self._in_flight.remove(task)
        if task.cancelled() or task.exception() is not None:
            for later in self._in_flight:
                later.cancel()  # one already done (with this same error): marks it seen
            self._in_flight.clear()
            task.result()
