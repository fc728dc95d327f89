"""Rendered pages, reused for a second and refreshed in the background.

A shop of 1,000 objectives x 5 key results takes about 200 ms of CPU to judge and print on
this machine; a request must answer in well under 100 ms. So a page is rendered at most
once per `fresh` seconds per snapshot: within that it is served as rendered (judged at the
instant it was rendered, which its `at` says); after it, or once the exporter holds a newer
snapshot, the next request gets the page as last rendered and starts one background render
(stale-while-revalidate). A page older than `stale_limit` is rendered on the request itself.
The pace moves by well under 0.01% of a period a second: a second-old judgment shows the same.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    version: object
    rendered_at: float
    body: bytes


class PageCache:
    """`get(key, version, render)`: bytes for `key`, rendered for `version` (the snapshot)."""

    def __init__(
        self,
        fresh: float = 1.0,
        stale_limit: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fresh = fresh
        self._stale_limit = stale_limit
        self._clock = clock
        self._entries: dict[Hashable, _Entry] = {}
        self._rendering: set[Hashable] = set()
        self._lock = threading.Lock()

    def get(self, key: Hashable, version: object, render: Callable[[], bytes]) -> bytes:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if (
                entry is not None
                and entry.version is version
                and now - entry.rendered_at < (self._fresh)
            ):
                return entry.body
            usable = entry is not None and now - entry.rendered_at < self._stale_limit
            if usable and key not in self._rendering:
                self._rendering.add(key)
                threading.Thread(
                    target=self._refresh, args=(key, version, render), daemon=True
                ).start()
        if usable:
            assert entry is not None
            return entry.body
        return self._store(key, version, render())

    def _store(self, key: Hashable, version: object, body: bytes) -> bytes:
        with self._lock:
            self._entries[key] = _Entry(version, self._clock(), body)
        return body

    def _refresh(self, key: Hashable, version: object, render: Callable[[], bytes]) -> None:
        try:
            self._store(key, version, render())
        except Exception:  # the next request renders again, on its own thread
            logger.warning("rendering a page in the background failed", exc_info=True)
        finally:
            with self._lock:
                self._rendering.discard(key)
