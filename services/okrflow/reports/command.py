"""`okrflow progress`: read only, from an existing database (it never creates one)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from okrflow.exitcodes import ExitCode, OperatorError


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


def run_progress(database_url: str, shop: str | None, at_text: str | None, fmt: str) -> int:
    from rich.console import Console

    from okrflow.readonly import open_for_reading
    from okrflow.reports.progress import progress_report
    from okrflow.reports.table import render_progress
    from okrflow.store.lookups import planned_shops

    at = parse_at(at_text)
    engine = open_for_reading(database_url)
    with engine.connect() as conn:
        report = progress_report(conn, at, shop)
        if shop is not None and not report["shops"]:
            shops = planned_shops(conn)
            known = f"shops with a plan: {', '.join(shops)}" if shops else "no shop has a plan yet"
            raise OperatorError(ExitCode.NOT_FOUND, f"no shop {shop!r} has a plan ({known})")
    if fmt == "json":
        print(json.dumps(report, indent=2, allow_nan=False))  # strict JSON, never Infinity
    else:
        render_progress(report, Console())
    sys.stdout.flush()  # a closed pipe shows here, inside the command, not at exit
    return ExitCode.OK
