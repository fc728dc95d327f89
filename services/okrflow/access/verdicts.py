"""A bounded, thread-safe cache of lookups' answers (found or not), each reused for a few
seconds: how the token check (and the intake's webhook secrets) cost no query per request."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

CACHE_MAX_ENTRIES = 10_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class VerdictCache(Generic[K, V]):
    """Lookups' answers, found (a value) or not (None), reused for `seconds`.

    At most `max_entries` are kept; the oldest is dropped first, so lookups of random keys
    (bad tokens) cannot grow memory without bound. Thread-safe; the lookup itself runs
    outside the lock, so a slow query does not hold up cached answers. An answer is reused
    until `seconds` after its lookup started, so a change made before a lookup started is
    seen by every caller within `seconds`. A lookup that raises caches nothing.
    """

    def __init__(
        self,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = CACHE_MAX_ENTRIES,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._seconds = seconds
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: K, lookup: Callable[[], V | None]) -> V | None:
        started = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and started < entry[0]:
                return entry[1]
        value = lookup()
        if self._seconds > 0:
            with self._lock:
                self._entries[key] = (started + self._seconds, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return value
