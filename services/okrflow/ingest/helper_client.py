"""The worker's side of its counting helper process: start it, send it batches, see it fail.

One `ProcessPoolExecutor` of one process, started with `spawn` (the worker has threads, which
`fork` would copy mid-flight) on the first batch. It holds the plans it was last sent, by
revision; they are sent again only when the revision moves or the helper is new.

If the helper fails (it died, a batch could not be sent, or it did not answer in a minute),
the worker logs it, counts that batch itself, and starts a new helper a minute later: a batch
is never lost to the helper.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from okrflow.counting.decode import MessageLike
from okrflow.ingest.clock import SYSTEM_CLOCK, Clock
from okrflow.ingest.helper_process import count_packed, helper_started
from okrflow.ingest.helper_protocol import CountedBatch, Packed
from okrflow.ingest.plan_cache import LoadedPlans
from okrflow.settings import Settings

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 60.0
# A batch of 20,000 takes the helper about 0.3 s; one that takes this long is stuck.
TIMEOUT_SECONDS = 60.0


class CountingHelper:
    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.topic = settings.events_topic
        self.max_bytes = settings.max_event_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._sent_revision: int | None = None
        self._failed_at: float | None = None
        self._closed = False

    async def count(
        self, records: Sequence[MessageLike], loaded: LoadedPlans
    ) -> CountedBatch | None:
        """The batch decoded and counted by the helper; None to count it in the worker (the
        helper is closed, failed less than a minute ago, or failed now: logged)."""
        if self._closed:
            return None
        if self._failed_at is not None:
            if self.clock.monotonic() - self._failed_at < RETRY_AFTER_SECONDS:
                return None
            self._failed_at = None
        loop = asyncio.get_running_loop()
        try:
            pool = self._start()
            packed = Packed.of(records)
            revision = loaded.revision
            plans = None if self._sent_revision == revision else loaded.plans
            counted = await asyncio.wait_for(
                loop.run_in_executor(
                    pool, count_packed, self.topic, packed, self.max_bytes, revision, plans
                ),
                TIMEOUT_SECONDS,
            )
            if counted is None:  # the helper did not have this revision's plans
                counted = await asyncio.wait_for(
                    loop.run_in_executor(
                        pool, count_packed, self.topic, packed, self.max_bytes, revision,
                        loaded.plans,
                    ),
                    TIMEOUT_SECONDS,
                )  # fmt: skip
            self._sent_revision = revision
            return counted
        except Exception as exc:  # BrokenProcessPool, a pickling error, a bug, a hung helper
            if self._closed:
                return None
            if isinstance(exc, TimeoutError):
                self._kill()
            logger.warning(
                "the counting helper process failed (%s: %s); the worker counts its batches "
                "itself and starts a new helper in %.0f s",
                type(exc).__name__, exc, RETRY_AFTER_SECONDS,
            )  # fmt: skip
            self._failed_at = self.clock.monotonic()
            self._abandon()
            self._stop()
            return None

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=helper_started,
                initargs=(os.getpid(),),
            )
            self._sent_revision = None
        return self._pool

    def _kill(self) -> None:
        """End a helper that does not answer (shutdown alone would wait for it forever)."""
        processes = getattr(self._pool, "_processes", None) or {}  # the executor's own record
        for process in list(processes.values()):
            process.kill()

    def _abandon(self) -> None:
        """After a failure: never wait for what was being sent to the helper. A batch half
        written into the pipe of a dead helper blocks the queue's feeder thread, and joining
        it (in the executor's shutdown, or at exit) hung the worker's exit (Python 3.11
        closes that pipe itself only on Windows, gh-107219)."""
        queue = getattr(self._pool, "_call_queue", None)  # the executor's own queue
        if queue is not None:
            queue.cancel_join_thread()

    def _stop(self) -> None:
        pool, self._pool = self._pool, None
        self._sent_revision = None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the helper (the worker counts any later batch itself)."""
        self._closed = True
        self._stop()
