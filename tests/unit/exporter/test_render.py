"""The exposition the exporter serves: every docs/metrics.md family, values from the formulas."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from okrflow.domain.model import (
    STATUSES,
    Cadence,
    KeyResult,
    Maintain,
    Objective,
    Period,
    Plan,
    SimpleMetric,
)
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import SeriesState, plan_progress
from okrflow.exporter.exposition import FAMILIES
from okrflow.exporter.forecasts import FORECAST_FAMILIES
from okrflow.exporter.render import OkrRenderer
from okrflow.exporter.snapshot import ProgressSnapshot


def _snapshot() -> ProgressSnapshot:
    kr = KeyResult(
        "new-clients",
        'Grow "clients"',
        SimpleMetric("customer.created", "count"),
        baseline=200,
        target=230,
    )
    parent = Objective(
        "more-clients",
        'More "clients" \\ now',
        "marketing",
        "company",
        Period(date(2026, 1, 1), date(2026, 6, 30)),
        (kr,),
    )
    child = Objective("tiktok", "TikTok", "social", "team", Period(date(2026, 1, 1), date(2026, 3, 31)),
                      (KeyResult("posts", "Posts", SimpleMetric("social.post.published", "count"), target=10),),
                      parent="more-clients")  # fmt: skip
    plan = Plan("salone-bella", "UTC", (parent, child))
    active = ActivePlan(plan, {("more-clients", "new-clients"): 1, ("tiktok", "posts"): 2})
    states = {
        1: {
            "value": SeriesState(
                events=15, total=15, last_event_at=datetime(2026, 2, 1, tzinfo=UTC)
            )
        }
    }
    return ProgressSnapshot(1.0, (active,), states, (("salone-bella", "customer.created", 15),))


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_family_is_served_with_values_from_the_formulas() -> None:
    text = OkrRenderer(_snapshot()).render(datetime(2026, 4, 1, tzinfo=UTC))
    samples = _samples(text)
    names = {name for name, _ in samples}
    # This plan has no KPIs: the okr_kpi_* families are test_kpi_render.py's; no backfill
    # is left (okr_backfill_remaining_messages: tests/integration/test_backfill_jobs.py);
    # the snapshot is taken before its periods, so no forecast (test_forecast_render.py).
    served = {
        name for name, _, _ in FAMILIES
        if not name.startswith("okr_kpi_") and name != "okr_backfill_remaining_messages"
        and name not in FORECAST_FAMILIES
    }  # fmt: skip
    assert served <= names
    kr = frozenset(
        {("shop", "salone-bella"), ("objective", "more-clients"), ("key_result", "new-clients")}
    )
    assert samples["okr_key_result_value", kr] == 215
    assert samples["okr_key_result_progress_ratio", kr] == 0.5
    assert (
        samples["okr_key_result_last_event_timestamp_seconds", kr]
        == datetime(2026, 2, 1, tzinfo=UTC).timestamp()
    )
    obj = frozenset({("shop", "salone-bella"), ("objective", "more-clients")})
    assert samples["okr_objective_progress_ratio", obj] == 0.25  # its KR 0.5, its child 0
    statuses = {dict(k)["status"]: v for (n, k), v in samples.items()
                if n == "okr_objective_status" and dict(k)["objective"] == "tiktok"}  # fmt: skip
    assert statuses == {
        "not_started": 0,
        "on_track": 0,
        "at_risk": 0,
        "off_track": 0,
        "achieved": 0,
        "missed": 1,
    }
    info = [dict(k) for n, k in samples if n == "okr_objective_info"]
    assert {"objective": "tiktok", "parent": "more-clients", "owner": "social", "level": "team", "title": "TikTok",
            "shop": "salone-bella"} in info  # fmt: skip
    assert (
        samples[
            "okr_shop_events_total",
            frozenset({("shop", "salone-bella"), ("type", "customer.created")}),
        ]
        == 15
    )


def test_label_values_are_escaped() -> None:
    text = OkrRenderer(_snapshot()).render(datetime(2026, 4, 1, tzinfo=UTC))
    titles = {dict(k)["title"] for n, k in _samples(text) if n == "okr_objective_info"}
    assert 'More "clients" \\ now' in titles


def _many_key_results_snapshot() -> tuple[Plan, ProgressSnapshot]:
    """40 objectives sharing one period, each with a linear, a cadence and a maintain key
    result whose counted values differ: groups of definitions sharing a pace rule, with
    progress all over the range."""
    linear = SimpleMetric("customer.created", "count")
    posts = SimpleMetric("social.post.published", "count")
    objectives = []
    ids: dict[tuple[str, str], int] = {}
    states: dict[int, dict[str, SeriesState]] = {}
    for i in range(40):
        key = f"obj-{i}"
        krs = (
            KeyResult("clients", "Clients", linear, baseline=0, target=100),
            KeyResult("posts", "Posts", posts, cadence=Cadence("day", 2, frozenset(range(5)))),
            KeyResult("refunds", "Refunds", linear, maintain=Maintain(below=10)),
        )
        objectives.append(
            Objective(key, key, "team", "team", Period(date(2026, 3, 1), date(2026, 3, 31)), krs)
        )
        for j, kr in enumerate(krs):
            kr_id = ids[key, kr.key] = 3 * i + j + 1
            n = (i * 37 + j * 11) % 130  # 0..129 events: below, around and above the targets
            day_counts = {date(2026, 3, 2 + d): 1 + (i + d) % 3 for d in range(min(n, 25))}
            states[kr_id] = {"value": SeriesState(events=n, total=n, day_counts=day_counts)}
    plan = Plan("many", "Europe/Rome", tuple(objectives))
    return plan, ProgressSnapshot(1.0, (ActivePlan(plan, ids),), states, ())


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 2, 20, tzinfo=UTC),  # not started
        datetime(2026, 3, 4, 9, tzinfo=UTC),
        datetime(2026, 3, 17, 18, tzinfo=UTC),
        datetime(2026, 3, 30, 23, tzinfo=UTC),
        datetime(2026, 4, 2, tzinfo=UTC),  # ended
    ],
)
def test_expected_and_status_of_every_definition_match_the_domain(now: datetime) -> None:
    plan, snapshot = _many_key_results_snapshot()
    samples = _samples(OkrRenderer(snapshot).render(now))
    ids = snapshot.plans[0].key_result_ids
    progress = plan_progress(
        plan, {pair: snapshot.states[kr_id] for pair, kr_id in ids.items()}, now
    )
    seen_statuses = set()
    for o in plan.objectives:
        r = progress[o.key]
        ol = {("shop", "many"), ("objective", o.key)}
        assert samples["okr_objective_expected_ratio", frozenset(ol)] == r.expected
        assert samples["okr_objective_status", frozenset(ol | {("status", r.status)})] == 1
        for p in r.key_results:
            kl = ol | {("key_result", p.key)}
            assert samples["okr_key_result_expected_ratio", frozenset(kl)] == p.expected
            for status in STATUSES:
                one = samples["okr_key_result_status", frozenset(kl | {("status", status)})]
                assert one == (1 if status == p.status else 0), (o.key, p.key, status)
            seen_statuses.add(p.status)
    assert len(seen_statuses) >= 2 or now.month != 3  # mixed statuses while it runs


def test_a_definition_with_nan_progress_is_judged_on_its_own() -> None:
    followers = SimpleMetric("social.followers.changed", "latest", ("data", "followers"))
    krs = tuple(KeyResult(f"k{i}", "t", followers, baseline=0, target=100) for i in range(3))
    objective = Objective(
        "o", "o", "team", "team", Period(date(2026, 3, 1), date(2026, 3, 31)), krs
    )
    plan = Plan("nan", "UTC", (objective,))
    ids = {("o", kr.key): i for i, kr in enumerate(krs, start=1)}
    levels = {1: 10.0, 2: float("nan"), 3: 90.0}
    states = {i: {"value": SeriesState(events=1, level=level)} for i, level in levels.items()}
    now = datetime(2026, 3, 16, tzinfo=UTC)
    samples = _samples(
        OkrRenderer(ProgressSnapshot(1.0, (ActivePlan(plan, ids),), states, ())).render(now)
    )
    expected = plan_progress(plan, {pair: states[i] for pair, i in ids.items()}, now)["o"]
    for p in expected.key_results:
        kl = {("shop", "nan"), ("objective", "o"), ("key_result", p.key)}
        ones = [
            s
            for s in STATUSES
            if samples["okr_key_result_status", frozenset(kl | {("status", s)})] == 1
        ]
        assert ones == [p.status]


def test_the_exposition_parses_back_to_what_was_rendered_infinities_included() -> None:
    """prometheus_client's parser agrees with every rendered sample line; a non-finite value is
    written as the text format spells it (+Inf, -Inf, NaN), not as Python's repr."""
    import math

    plan_snapshot = _snapshot()
    infinite = {1: {"value": SeriesState(events=2, total=math.inf, last_event_at=None)}}
    snapshot = ProgressSnapshot(1.0, plan_snapshot.plans, infinite, plan_snapshot.shop_events)
    text = OkrRenderer(snapshot).render(datetime(2026, 4, 1, tzinfo=UTC))
    parsed = _samples(text)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(parsed) == len(lines)
    tokens = {line.rsplit(" ", 1)[1] for line in lines}
    assert "+Inf" in tokens
    assert not tokens & {"inf", "-inf", "nan"}
    for line in lines:
        head, token = line.rsplit(" ", 1)
        matches = [v for (name, _), v in parsed.items() if head.startswith(name)]
        assert matches, line
        value = float(token)
        assert any(v == value or (math.isnan(v) and math.isnan(value)) for v in matches), line
    kr = frozenset(
        {("shop", "salone-bella"), ("objective", "more-clients"), ("key_result", "new-clients")}
    )
    assert parsed["okr_key_result_value", kr] == math.inf
