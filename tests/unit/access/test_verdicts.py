"""The verdict cache: expiry, size bound, threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from okrflow.access.verdicts import VerdictCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lookups:
    """A fake lookup: answers from `values`, counting calls per key."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, key: str) -> str | None:
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
        return self.values.get(key)


# --- the verdict cache ---------------------------------------------------------------------


def test_answers_found_and_not_found_are_reused_until_they_expire() -> None:
    clock, lookups = Clock(), Lookups({"a": "shop-a"})
    cache: VerdictCache[str, str] = VerdictCache(2.0, clock)

    assert cache.get("a", lambda: lookups("a")) == "shop-a"
    assert cache.get("x", lambda: lookups("x")) is None
    clock.now += 1.9
    assert cache.get("a", lambda: lookups("a")) == "shop-a"
    assert cache.get("x", lambda: lookups("x")) is None
    assert lookups.calls == {"a": 1, "x": 1}

    lookups.values = {"x": "shop-x"}  # "a" revoked, "x" created
    clock.now += 0.1
    assert cache.get("a", lambda: lookups("a")) is None
    assert cache.get("x", lambda: lookups("x")) == "shop-x"
    assert lookups.calls == {"a": 2, "x": 2}


def test_expiry_counts_from_when_the_lookup_started() -> None:
    clock = Clock()
    cache: VerdictCache[str, str] = VerdictCache(2.0, clock)

    def slow_lookup() -> str:
        clock.now += 1.5  # the query takes 1.5 s
        return "shop-a"

    assert cache.get("a", slow_lookup) == "shop-a"
    clock.now += 0.5  # 2 s after the lookup started: a change made before it is seen now
    assert cache.get("a", lambda: None) is None


def test_zero_seconds_caches_nothing() -> None:
    lookups = Lookups({"a": "shop-a"})
    cache: VerdictCache[str, str] = VerdictCache(0, Clock())
    for _ in range(3):
        assert cache.get("a", lambda: lookups("a")) == "shop-a"
    assert lookups.calls == {"a": 3}
    assert len(cache) == 0


def test_a_failed_lookup_caches_nothing() -> None:
    cache: VerdictCache[str, str] = VerdictCache(2.0, Clock())

    def failing() -> str | None:
        raise ConnectionError("database down")

    with pytest.raises(ConnectionError):
        cache.get("a", failing)
    assert cache.get("a", lambda: "shop-a") == "shop-a"


def test_the_cache_is_bounded_and_drops_the_oldest_first() -> None:
    lookups = Lookups({})
    cache: VerdictCache[str, str] = VerdictCache(60.0, Clock(), max_entries=3)
    for key in ("k1", "k2", "k3", "k4"):
        cache.get(key, partial(lookups, key))
    assert len(cache) == 3
    for key in ("k2", "k3", "k4"):
        cache.get(key, partial(lookups, key))
    assert lookups.calls == {"k1": 1, "k2": 1, "k3": 1, "k4": 1}  # still cached
    cache.get("k1", lambda: lookups("k1"))  # dropped: looked up again
    assert lookups.calls["k1"] == 2
    assert len(cache) == 3


def test_many_threads_get_right_answers_and_the_bound_holds() -> None:
    lookups = Lookups({f"good-{i}": f"shop-{i}" for i in range(50)})
    cache: VerdictCache[str, str] = VerdictCache(60.0, max_entries=100)
    sizes: list[int] = []

    def work(worker: int) -> list[bool]:
        results = []
        for i in range(500):
            good = f"good-{(worker + i) % 50}"
            results.append(cache.get(good, partial(lookups, good)) == "shop-" + good[5:])
            bad = f"bad-{worker}-{i}"
            results.append(cache.get(bad, partial(lookups, bad)) is None)
            sizes.append(len(cache))
        return results

    with ThreadPoolExecutor(8) as pool:
        assert all(all(r) for r in pool.map(work, range(8)))
    assert max(sizes) <= 100
