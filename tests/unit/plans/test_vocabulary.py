"""Warnings, with file and line, about event types and field paths no event will carry;
`okrflow validate` checks files offline and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from okrflow.events.types import BUILT_IN
from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.plans.command import run_validate
from okrflow.plans.parse import parse_plan
from okrflow.plans.vocabulary import built_in_fields, plan_warnings

REPO = Path(__file__).resolve().parents[3]

PLAN = """\
shop: salone-bella
timezone: UTC
objectives:
  - key: reach
    title: Reach
    owner: marketing
    period: {start: 2026-01-01, end: 2026-06-30}
    key_results:
      - key: posts
        metric: {event: social.post.publshed, aggregate: count}
        target: 10
      - key: tiktok
        metric:
          event: social.post.published
          where: {data.platfrom: tiktok}
          aggregate: count
        target: 10
      - key: revenue
        metric: {event: order.placed, aggregate: sum, field: data.totl}
        target: 10
      - key: custom
        metric: {event: salon.booking.made, where: {data.anything: 1}, aggregate: count}
        target: 10
"""


def test_typos_are_warned_at_their_line_with_the_closest_name() -> None:
    warnings = [str(w) for w in plan_warnings(parse_plan(PLAN, "okrs.yaml"))]
    assert warnings[0].startswith(
        "okrs.yaml:10: objectives[0].key_results[0].metric.event: warning: "
        "event type 'social.post.publshed' is not built in"
    )
    assert warnings[0].endswith("did you mean 'social.post.published'?")
    assert warnings[1].startswith(
        "okrs.yaml:15: objectives[0].key_results[1].metric.where.data.platfrom: warning: "
        "'data.platfrom' is not defined for social.post.published"
    )
    assert warnings[1].endswith("did you mean 'data.platform'?")
    assert warnings[2].startswith("okrs.yaml:19: objectives[0].key_results[2].metric.field:")
    assert warnings[2].endswith("did you mean 'data.total'?")
    # A shop's own type is only known once seen; its fields are its own (no path warning).
    assert warnings[3].startswith("okrs.yaml:22: objectives[0].key_results[3].metric.event:")
    assert len(warnings) == 4


def test_types_the_database_has_seen_for_the_shop_are_known() -> None:
    parsed = parse_plan(PLAN, "okrs.yaml")
    warnings = plan_warnings(parsed, {"salon.booking.made"})
    assert [w.line for w in warnings] == [10, 15, 19]
    assert "nor seen for this shop" in warnings[0].message


def test_a_correct_plan_has_no_warnings() -> None:
    good = PLAN.replace("publshed", "published").replace("platfrom", "platform")
    good = good.replace("data.totl", "data.total").replace("salon.booking.made", "order.placed")
    good = good.replace("data.anything: 1", "data.channel: web, shop: salone-bella")
    assert plan_warnings(parse_plan(good, "okrs.yaml")) == []


def test_built_in_fields_are_those_of_the_event_schemas() -> None:
    for event_type in BUILT_IN:
        schema = json.loads(
            (REPO / "schemas" / "events" / f"{event_type}.v1.schema.json").read_text()
        )
        assert built_in_fields(event_type) == set(schema["properties"]), event_type
    assert built_in_fields("salon.booking.made") is None


def test_validate_exits_0_with_warnings_and_2_for_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "okrs.yaml"
    plan.write_text(PLAN)
    assert run_validate([str(plan)]) == ExitCode.OK
    out, err = capsys.readouterr()
    assert out == (
        f"{plan}: shop salone-bella: valid, 1 objective(s), 4 key result(s), 4 warning(s)\n"
    )
    assert len(err.splitlines()) == 4 and all(f"{plan}:" in line for line in err.splitlines())

    plan.write_text(PLAN.replace("target: 10\n      - key: tiktok", "\n      - key: tiktok"))
    with pytest.raises(OperatorError) as refused:
        run_validate([str(plan)])
    assert refused.value.code == ExitCode.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{plan}:9: objectives[0].key_results[0]: needs exactly one of target")
