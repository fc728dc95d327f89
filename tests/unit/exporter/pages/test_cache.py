"""PageCache: fresh pages reused, stale ones served while one background render replaces them,
too old or missing ones rendered on the request."""

from __future__ import annotations

import threading
import time

from okrflow.exporter.pages.cache import PageCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fresh_stale_and_too_old() -> None:
    clock = Clock()
    cache = PageCache(fresh=1.0, stale_limit=10.0, clock=clock)
    v1, v2 = object(), object()
    renders: list[str] = []
    done = threading.Event()

    def render(body: str, signal: bool = False) -> bytes:
        renders.append(body)
        if signal:
            done.set()
        return body.encode()

    assert cache.get("shop", v1, lambda: render("a")) == b"a"  # nothing yet: on the request
    clock.now += 0.5
    assert cache.get("shop", v1, lambda: render("b")) == b"a"  # fresh: reused
    assert renders == ["a"]
    # A newer snapshot: the last page now, the new one rendered in the background.
    assert cache.get("shop", v2, lambda: render("c", signal=True)) == b"a"
    assert done.wait(5)
    for _ in range(100):  # bounded: the background thread stores its page
        if cache.get("shop", v2, lambda: render("x")) == b"c":
            break
        time.sleep(0.01)
    assert cache.get("shop", v2, lambda: render("x")) == b"c"
    assert "x" not in renders
    clock.now += 60  # too old to show: rendered on the request
    assert cache.get("shop", v2, lambda: render("d")) == b"d"


def test_a_failing_background_render_keeps_the_last_page() -> None:
    clock = Clock()
    cache = PageCache(fresh=1.0, stale_limit=10.0, clock=clock)
    version = object()
    cache.get("k", version, lambda: b"old")
    clock.now += 2
    failed = threading.Event()

    def broken() -> bytes:
        failed.set()
        raise RuntimeError("boom")

    assert cache.get("k", version, broken) == b"old"
    assert failed.wait(5)
    for _ in range(100):  # bounded: until the failed render released the key
        body = cache.get("k", version, lambda: b"new")
        if body == b"new":
            break
        time.sleep(0.01)
    assert body == b"new"  # the key was released: a later render replaced the page
