"""`okrflow progress` and `okrflow history`: read only, from an existing database (they never
create one)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime

from rich.console import Console

from okrflow.domain.periods import local_day
from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.plans.lookups import no_such_shop
from okrflow.plans.stored import load_active_plans
from okrflow.readonly import open_for_reading
from okrflow.reports.history import HistoryQuery, NothingSelected, history_report
from okrflow.reports.history_csv import history_csv
from okrflow.reports.progress import progress_report
from okrflow.reports.table import render_history, render_progress


def parse_at(text: str | None) -> datetime:
    """`--at`: an ISO 8601 time with an offset (now when None), in UTC."""
    if text is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise OperatorError(ExitCode.USAGE, f"--at {text!r}: not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise OperatorError(ExitCode.USAGE, f"--at {text!r}: needs an offset (e.g. Z or +01:00)")
    return at.astimezone(UTC)


# Days a report can be asked for: windows reach up to 366 days before one and a day after it,
# which the ends of Python's calendar (years 1 and 9999) cannot hold.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def parse_day(flag: str, text: str | None) -> date | None:
    """A local date flag (`--as-of`, `--from`, `--to`): YYYY-MM-DD."""
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise OperatorError(
            ExitCode.USAGE, f"{flag} {text!r}: not a date (YYYY-MM-DD, a local day)"
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise OperatorError(
            ExitCode.USAGE, f"{flag} {text}: out of range (from {FIRST_DAY} to {LAST_DAY})"
        )
    return day


def run_progress(
    database_url: str, shop: str | None, at_text: str | None, fmt: str,
    as_of_text: str | None = None,
) -> int:  # fmt: skip
    at = parse_at(at_text)
    as_of = parse_day("--as-of", as_of_text)
    engine = open_for_reading(database_url)
    with engine.connect() as conn:
        report = progress_report(conn, at, shop, as_of)
        if shop is not None and not report.shops:
            raise no_such_shop(conn, shop)
    if fmt == "json":
        print(json.dumps(report.to_json(), indent=2, allow_nan=False))  # never Infinity
    else:
        render_progress(report, Console())
    sys.stdout.flush()  # a closed pipe shows here, inside the command, not at exit
    return ExitCode.OK


def run_history(
    database_url: str, shop: str, objective: str | None, key_result: str | None,
    first_text: str | None, last_text: str | None, fmt: str,
) -> int:  # fmt: skip
    first, last = parse_day("--from", first_text), parse_day("--to", last_text)
    if first is not None and last is not None and first > last:
        raise OperatorError(ExitCode.USAGE, f"--from {first} is after --to {last}")
    query = HistoryQuery(objective, key_result, first, last)
    engine = open_for_reading(database_url)
    with engine.connect() as conn:
        plans = load_active_plans(conn, shop)
        if not plans:
            raise no_such_shop(conn, shop)
        (active,) = plans
        now = datetime.now(UTC)
        today = local_day(now, active.plan.timezone)
        try:
            report = history_report(conn, active, query, today, now=now)
        except NothingSelected as exc:
            raise OperatorError(ExitCode.NOT_FOUND, f"shop {shop!r}: {exc}") from None
    if fmt == "json":
        print(json.dumps(report.to_json(), indent=2, allow_nan=False))
    elif fmt == "csv":
        sys.stdout.write(history_csv(report))
    else:
        render_history(report, Console())
    sys.stdout.flush()
    return ExitCode.OK
