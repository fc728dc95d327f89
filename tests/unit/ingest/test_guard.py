import pytest

from okrflow.ingest.guard import InvalidShareExceeded, InvalidShareGuard


def test_guard_waits_for_enough_messages_then_stops_past_the_share() -> None:
    guard = InvalidShareGuard(max_share=0.5, window=100, min_messages=20)
    guard.check(10, 10)  # all invalid, but too few to judge
    with pytest.raises(InvalidShareExceeded, match="11 of the last 20 messages are invalid"):
        guard.check(10, 1)


def test_old_batches_leave_the_window() -> None:
    guard = InvalidShareGuard(max_share=0.5, window=100, min_messages=10)
    guard.check(40, 20)  # exactly half: fine
    for _ in range(10):
        guard.check(10, 0)
    guard.check(50, 40)  # 40 of the last 100: the first batch has left the window
    with pytest.raises(InvalidShareExceeded):
        guard.check(20, 20)
