"""The one database retry policy (okrflow.ops.database_retry): what is retried, the pauses
between tries, and what happens at the limit."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from okrflow.ops.database_retry import Pause, is_connection_error, retry_while_unreachable

DOWN = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
REFUSED = IntegrityError("INSERT", {}, ValueError("index row too large"))


class _SqlState(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_the_database_down_is_retried_and_refused_data_is_not() -> None:
    assert is_connection_error(DOWN)
    assert not is_connection_error(REFUSED)
    assert is_connection_error(OperationalError("x", {}, _SqlState("08006")))
    assert is_connection_error(OperationalError("x", {}, _SqlState("57P01")))
    # psycopg's OperationalError for a data limit (an index row too large) is content.
    assert not is_connection_error(OperationalError("x", {}, _SqlState("54000")))


def test_pauses_double_from_half_a_second_to_the_longest_then_it_succeeds() -> None:
    pauses: list[Pause] = []
    calls = iter([DOWN] * 9 + [None])

    def attempt() -> str:
        error = next(calls)
        if error is not None:
            raise error
        return "written"

    assert retry_while_unreachable(attempt, longest_pause=30.0, pause=pauses.append) == "written"
    assert [p.seconds for p in pauses] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert [p.attempt for p in pauses] == list(range(1, 10))
    assert all(p.error is DOWN for p in pauses)


def test_other_errors_are_not_retried() -> None:
    pauses: list[Pause] = []

    def attempt() -> None:
        raise REFUSED

    with pytest.raises(IntegrityError):
        retry_while_unreachable(attempt, longest_pause=30.0, pause=pauses.append)
    assert pauses == []


def test_after_the_deadline_the_last_error_is_raised_again() -> None:
    tries = []

    def attempt() -> None:
        tries.append(1)
        raise DOWN

    with pytest.raises(OperationalError) as raised:
        retry_while_unreachable(attempt, longest_pause=5.0, pause=lambda p: None, give_up_after=0)
    assert raised.value is DOWN and len(tries) == 1


def test_a_pause_may_stop_the_retries() -> None:
    class Stopping(Exception):
        pass

    def stop(pause: Pause) -> None:
        raise Stopping from pause.error

    def attempt() -> None:
        raise DOWN

    with pytest.raises(Stopping) as raised:
        retry_while_unreachable(attempt, longest_pause=30.0, pause=stop)
    assert raised.value.__cause__ is DOWN
