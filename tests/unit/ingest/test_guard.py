"""The invalid-share guard, per source: one shop is quarantined (reported), never stops the
worker; garbage across shops, or without keys, does."""

from collections import Counter

import pytest

from okrflow.ingest.guard import (
    InvalidShareExceeded,
    InvalidShareGuard,
    QuarantineChange,
    Source,
    source_name,
)


def batch(**per_source: tuple[int, int]) -> tuple[Counter[Source], Counter[Source]]:
    """(messages, invalid) per source: keyword = the key (`none` for no key)."""
    messages: Counter[Source] = Counter()
    invalid: Counter[Source] = Counter()
    for name, (n, bad) in per_source.items():
        source = None if name == "none" else name.encode()
        messages[source] += n
        if bad:
            invalid[source] += bad
    return messages, invalid


def test_one_shop_sending_only_garbage_never_stops_the_worker() -> None:
    guard = InvalidShareGuard(max_share=0.5, window=10_000, min_messages=200)
    changes = guard.check(*batch(a=(500, 500)))
    assert changes == [QuarantineChange(b"a", True, 500, 500)]
    for _ in range(40):  # 20,000 more, far past the window, and nothing else at all
        assert guard.check(*batch(a=(500, 500))) == []
    assert guard.check(*batch(a=(500, 500), b=(10, 0), c=(10, 0))) == []
    assert guard.quarantined == {b"a"}


def test_the_quarantine_is_reported_once_and_ends_when_the_shop_recovers() -> None:
    guard = InvalidShareGuard(max_share=0.5, window=1000, min_messages=100)
    assert guard.check(*batch(a=(99, 99))) == []  # too few of its own to judge
    assert guard.check(*batch(a=(1, 1))) == [QuarantineChange(b"a", True, 100, 100)]
    assert guard.check(*batch(a=(100, 100), b=(100, 0))) == []
    # 200 of its 400 invalid: exactly half is not more than half.
    assert guard.check(*batch(a=(200, 0))) == [QuarantineChange(b"a", False, 200, 400)]
    assert guard.quarantined == set()


def test_a_quarantine_ends_when_the_shop_leaves_the_window() -> None:
    guard = InvalidShareGuard(max_share=0.5, window=300, min_messages=100)
    assert guard.check(*batch(a=(150, 150)))[0].begins
    guard.check(*batch(b=(200, 0)))
    assert guard.check(*batch(b=(200, 0))) == [QuarantineChange(b"a", False, 0, 0)]


def test_garbage_from_two_shops_that_is_most_of_the_stream_stops_it() -> None:
    guard = InvalidShareGuard(max_share=0.5, window=10_000, min_messages=200)
    with pytest.raises(InvalidShareExceeded) as caught:
        guard.check(*batch(a=(500, 500), b=(400, 400), c=(100, 0)))
    # Leaving out a (the shop whose absence lowers the share most): 400 of 500.
    assert str(caught.value).startswith(
        "400 of the last 500 messages are invalid with shop a left out, from 1 shop "
        "(more than 50%): a bad deploy across shops?"
    )


def test_garbage_from_two_shops_among_healthy_ones_does_not_stop_it() -> None:
    guard = InvalidShareGuard(max_share=0.5, window=10_000, min_messages=200)
    changes = guard.check(*batch(a=(500, 500), b=(500, 500), c=(2000, 0), d=(2000, 0)))
    assert [c.source for c in changes] == [b"a", b"b"]


def test_a_bad_deploy_across_many_small_shops_stops_it() -> None:
    """No shop has enough messages to be quarantined, but together they are the stream."""
    guard = InvalidShareGuard(max_share=0.5, window=10_000, min_messages=200)
    shops = {f"s{i}": (20, 18) for i in range(30)}
    with pytest.raises(InvalidShareExceeded, match="540 of the last 600 messages are invalid"):
        guard.check(*batch(**shops))


def test_a_shop_that_is_most_of_the_stream_cannot_stop_it_even_with_a_low_share() -> None:
    """The shop with the most invalid messages is not always the one to leave out: here a
    sends more invalid messages, but b alone explains the share."""
    guard = InvalidShareGuard(max_share=0.5, window=100_000, min_messages=200)
    guard.check(*batch(a=(10_000, 300), b=(250, 250)))
    guard.check(*batch(b=(5_000, 5_000)))  # b: everything invalid, a: 3%
    assert guard.quarantined == {b"b"}


def test_messages_without_a_key_are_no_shop_and_can_stop_it() -> None:
    guard = InvalidShareGuard(max_share=0.5, window=10_000, min_messages=200)
    guard.check(*batch(a=(100, 0)))
    with pytest.raises(InvalidShareExceeded, match="from 0 shops and messages without a key"):
        guard.check(*batch(none=(300, 300), a=(100, 0)))
    # An empty key is no key.
    empty = InvalidShareGuard(max_share=0.5, window=10_000, min_messages=200)
    messages, invalid = Counter({b"": 300}), Counter({b"": 300})
    with pytest.raises(InvalidShareExceeded, match="300 of the last 300 messages"):
        empty.check(messages, invalid)


def test_keyless_garbage_beside_one_bad_shop_stops_it() -> None:
    guard = InvalidShareGuard(max_share=0.5, window=10_000, min_messages=200)
    with pytest.raises(InvalidShareExceeded, match="with shop a left out"):
        guard.check(*batch(a=(1000, 1000), none=(300, 300), b=(100, 0)))


def test_the_window_forgets_old_batches() -> None:
    guard = InvalidShareGuard(max_share=0.5, window=100, min_messages=10)
    guard.check(*batch(a=(100, 0)))
    with pytest.raises(InvalidShareExceeded, match="60 of the last 100"):
        guard.check(*batch(none=(100, 60)))  # 60 of 200 with the first batch, which has left


def test_a_share_of_1_turns_the_guard_off() -> None:
    guard = InvalidShareGuard(max_share=1, window=100, min_messages=10)
    assert guard.check(*batch(none=(500, 500), a=(500, 500), b=(500, 500))) == []
    assert guard.quarantined == set()  # no share can pass 1


def test_source_names_are_safe_to_log() -> None:
    assert source_name(b"salone-bella") == "salone-bella"
    assert source_name(None) == "unattributed (messages without a key)"
    assert source_name(b"a\nb\xff") == "a\\nb\\\\xff"
    assert len(source_name(b"x" * 1000)) == 64
