"""Stop instead of dead-lettering everything when upstream sends garbage (a bad deploy)."""

from __future__ import annotations

from collections import deque

from okrflow.ingest.errors import WorkerFatal


class InvalidShareExceeded(WorkerFatal):
    """Too many invalid messages recently: the worker stops and says why."""


class InvalidShareGuard:
    """Tracks the invalid share over roughly the last `window` messages."""

    def __init__(self, max_share: float, window: int, min_messages: int) -> None:
        self.max_share = max_share
        self.window = window
        self.min_messages = min_messages
        self._batches: deque[tuple[int, int]] = deque()  # (messages, invalid)
        self._messages = 0
        self._invalid = 0

    def check(self, messages: int, invalid: int) -> None:
        """Record a batch; raises InvalidShareExceeded (before the batch is applied) when the
        share over the window passes `max_share`."""
        self._batches.append((messages, invalid))
        self._messages += messages
        self._invalid += invalid
        while self._batches and self._messages - self._batches[0][0] >= self.window:
            old_messages, old_invalid = self._batches.popleft()
            self._messages -= old_messages
            self._invalid -= old_invalid
        if self._messages >= self.min_messages and self._invalid > self.max_share * self._messages:
            raise InvalidShareExceeded(
                f"{self._invalid} of the last {self._messages} messages are invalid "
                f"(more than {self.max_share:.0%}): stopping instead of dead-lettering them all; "
                "fix the producer, or raise OKRFLOW_MAX_INVALID_SHARE"
            )
