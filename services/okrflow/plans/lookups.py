"""Looking up what a plan names, for commands that take a shop: the operator's error when it
has none."""

from __future__ import annotations

from sqlalchemy import Connection

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.store.lookups import planned_shops


def no_such_shop(conn: Connection, shop: str) -> OperatorError:
    """Exit 10 for a shop with no plan, naming the shops that have one."""
    shops = planned_shops(conn)
    known = f"shops with a plan: {', '.join(shops)}" if shops else "no shop has a plan yet"
    return OperatorError(ExitCode.NOT_FOUND, f"no shop {shop!r} has a plan ({known})")
