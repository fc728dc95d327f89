"""The plan shows old -> new values for every changed field, nested ones by dotted path,
long values shortened."""

from __future__ import annotations

import copy
from typing import Any

from okrflow.plans.diff import MAX_SHOWN, counting_fingerprint, diff_plan, show_value
from okrflow.store.plans import StoredKeyResult, StoredPlan

KR: dict[str, Any] = {
    "key": "posts",
    "metric": {
        "event": "social.post.published",
        "where": {"data.platform": "tiktok"},
        "aggregate": "count",
    },
    "target": 10,
}
OBJECTIVE: dict[str, Any] = {
    "key": "reach",
    "title": "Reach",
    "owner": "marketing",
    "period": {"start": "2026-01-01", "end": "2026-06-30"},
}


def _source(kr: dict[str, Any], objective: dict[str, Any] = OBJECTIVE) -> dict[str, Any]:
    return {
        "shop": "s",
        "timezone": "UTC",
        "objectives": [{**objective, "key_results": [kr]}],
    }


def _stored() -> StoredPlan:
    return StoredPlan(
        "UTC",
        {"reach": dict(OBJECTIVE)},
        {
            ("reach", "posts"): StoredKeyResult(
                1, copy.deepcopy(KR), counting_fingerprint(KR, "UTC")
            )
        },
    )


def test_a_changed_target_shows_its_old_and_new_value() -> None:
    changes = diff_plan(_source({**KR, "target": 12}), _stored())
    assert [str(c) for c in changes] == ["changed  key result reach/posts (target: 10 -> 12)"]
    (field,) = changes[0].fields
    assert (field.path, field.old, field.new) == ("target", 10, 12)


def test_a_nested_field_is_shown_by_its_path_and_counters_restart() -> None:
    kr = copy.deepcopy(KR)
    kr["metric"]["where"]["data.platform"] = "instagram"
    (change,) = diff_plan(_source(kr), _stored())
    assert change.detail == (
        "metric.where.data.platform: tiktok -> instagram; metric changed: counters restart at zero"
    )


def test_fields_set_on_one_side_only_and_several_fields() -> None:
    objective = {**OBJECTIVE, "title": "More reach", "weight": 2}
    (change,) = diff_plan(_source(KR, objective), _stored())
    assert (
        str(change) == "changed  objective reach (title: Reach -> More reach, weight: (unset) -> 2)"
    )


def test_a_time_zone_change_shows_both_zones() -> None:
    source = {**_source(KR), "timezone": "Europe/Rome"}
    changes = diff_plan(source, _stored())
    assert str(changes[0]) == "changed  time zone (timezone: UTC -> Europe/Rome)"
    assert changes[1].detail == "time zone changed: counters restart at zero"


def test_true_and_one_differ_but_one_and_one_point_zero_do_not() -> None:
    assert diff_plan(_source({**KR, "target": 10.0}), _stored()) == []
    (change,) = diff_plan(_source({**KR, "title": True}), _stored())
    assert change.detail == "title: (unset) -> true"


def test_long_values_are_shortened_keeping_both_ends() -> None:
    long_list = [f"platform-{i}" for i in range(30)]
    shown = show_value(long_list)
    assert len(shown) == MAX_SHOWN
    assert shown.startswith('["platform-0", ') and shown.endswith('platform-29"]')
    assert "..." in shown
    assert show_value("short") == "short"
    kr = copy.deepcopy(KR)
    kr["metric"]["where"]["data.platform"] = {"in": long_list}
    (change,) = diff_plan(_source(kr), _stored())
    assert change.detail.startswith("metric.where.data.platform: tiktok -> {")
    assert len(change.detail.split(" -> ")[1].split(";")[0]) == MAX_SHOWN
