"""A period that starts before the events topic's retention reaches back is warned about at
its line, by `apply` and (offline) `validate`; warnings never change the exit code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from okrflow.exitcodes import ExitCode
from okrflow.plans.command import run_validate
from okrflow.plans.parse import parse_plan
from okrflow.plans.retention_warnings import retention_warnings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

PLAN = """\
shop: salone-bella
timezone: Europe/Rome
objectives:
  - key: last-year
    title: Last year
    owner: marketing
    period:
      start: {old}
      end: 2026-12-31
    key_results:
      - key: clients
        metric: {{event: customer.created, aggregate: count}}
        target: 10
  - key: this-quarter
    title: This quarter
    owner: marketing
    period: {{start: {new}, end: 2026-12-31}}
    key_results:
      - key: clients
        metric: {{event: customer.created, aggregate: count}}
        target: 10
"""


def plan_text(old: str = "2025-01-01", new: str = "2026-10-01") -> str:
    return PLAN.format(old=old, new=new)


def test_a_period_older_than_the_retention_is_warned_at_its_start_line() -> None:
    parsed = parse_plan(plan_text(), "okrs.yaml")
    warnings = [str(w) for w in retention_warnings(parsed, timedelta(days=400), NOW)]
    assert warnings == [
        "okrs.yaml:8: objectives[0].period.start: warning: the period starts 2025-01-01, "
        "before the events topic's retention (400 day(s)) reaches back (to 2025-10-22): "
        "events before then may be gone, so a key result added later cannot be recounted "
        "from them"
    ]


def test_periods_within_the_retention_or_unlimited_are_not_warned() -> None:
    parsed = parse_plan(plan_text(), "okrs.yaml")
    assert retention_warnings(parsed, timedelta(days=800), NOW) == []
    assert retention_warnings(parsed, None, NOW) == []


def test_the_period_starts_at_midnight_in_the_plans_time_zone() -> None:
    # Midnight of 2025-10-22 in Rome (UTC+2 then) is 2025-10-21T22:00Z: 400 days before
    # 2026-11-26T00:00Z is 2025-10-22T00:00Z, so that start is older by two hours.
    at_midnight = datetime(2026, 11, 26, tzinfo=UTC)
    parsed = parse_plan(plan_text(old="2025-10-22"), "okrs.yaml")
    assert len(retention_warnings(parsed, timedelta(days=400), at_midnight)) == 1
    parsed = parse_plan(plan_text(old="2025-10-23"), "okrs.yaml")
    assert retention_warnings(parsed, timedelta(days=400), at_midnight) == []


def test_validate_warns_offline_and_still_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "okrs.yaml"
    plan.write_text(plan_text(old="2020-01-01", new=datetime.now(UTC).date().isoformat()))
    assert run_validate([str(plan)], timedelta(days=400)) == ExitCode.OK
    out, err = capsys.readouterr()
    assert err.startswith(f"{plan}:8: objectives[0].period.start: warning: the period starts ")
    assert len(err.splitlines()) == 1
    assert out.endswith("2 key result(s), 1 warning(s)\n")
    assert run_validate([str(plan)], None) == ExitCode.OK
    assert capsys.readouterr().err == ""
