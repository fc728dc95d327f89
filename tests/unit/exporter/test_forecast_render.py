"""The forecast families the exporter serves (exporter/forecasts.py): domain.forecast_plan's
outcomes as of the refresh, no sample for a key result or objective without a forecast."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from okrflow.domain.forecast import KeyResultForecast, NoForecast
from okrflow.domain.forecast_objective import ObjectiveForecast
from okrflow.domain.forecast_plan import forecast_plan
from okrflow.domain.model import (
    Cadence,
    KeyResult,
    Objective,
    Period,
    Plan,
    RatioMetric,
    SimpleMetric,
)
from okrflow.domain.plans import ActivePlan
from okrflow.domain.progress import SeriesState, measure_plan
from okrflow.exporter.collector import OkrCollector
from okrflow.exporter.forecasts import FORECAST_FAMILIES, ForecastBook, PlanInputs, objective_trees
from okrflow.exporter.plan_labels import labels_of
from okrflow.exporter.render import OkrRenderer
from okrflow.exporter.snapshot import ProgressSnapshot

PERIOD = Period(date(2026, 3, 2), date(2026, 5, 31))
TAKEN = datetime(2026, 3, 20, 12, tzinfo=UTC)  # 18 complete local days of the period
ORDERS = SimpleMetric("order.placed", "count")
POSTS = SimpleMetric("social.post.published", "count")
ALL = frozenset(range(7))


def _plan() -> tuple[ActivePlan, dict[int, dict[str, SeriesState]]]:
    sales = Objective("sales", "Sales", "team", "team", PERIOD, (
        KeyResult("orders", "Orders", ORDERS, target=400),
        KeyResult("posts", "Posts", POSTS, cadence=Cadence("day", 1, ALL)),
    ))  # fmt: skip
    refunds = Objective("refunds", "Refunds", "team", "team", PERIOD, (
        KeyResult("refunds", "Refunds", RatioMetric(ORDERS, ORDERS), target=0.5),
    ), parent="sales")  # fmt: skip
    plan = Plan("shop-a", "Europe/Rome", (sales, refunds))
    ids = {("sales", "orders"): 1, ("sales", "posts"): 2, ("refunds", "refunds"): 3}
    days = {PERIOD.start + timedelta(days=i): 1 + i % 4 for i in range(19)}
    states = {
        1: {"value": SeriesState(sum(days.values()), float(sum(days.values())),
                                 day_counts=days, day_totals={d: float(n) for d, n in days.items()})},
        2: {"value": SeriesState(19, 19.0, day_counts={d: 1 for d in days})},
        3: {"value": SeriesState(2, 2.0)},
    }  # fmt: skip
    return ActivePlan(plan, ids), states


def _snapshot(taken: datetime = TAKEN) -> ProgressSnapshot:
    active, states = _plan()
    return ProgressSnapshot(taken.timestamp(), (active,), states, ())


def _domain(at: datetime) -> tuple[dict[tuple[str, str], object], dict[str, object]]:
    active, states = _plan()
    pairs = {pair: states[i] for pair, i in active.key_result_ids.items()}
    found = forecast_plan(active.plan, measure_plan(active.plan, pairs), pairs, at)
    return dict(found.key_results), dict(found.objectives)


def _forecast_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in FORECAST_FAMILIES
    }


def test_forecasts_as_of_the_snapshot_and_no_sample_without_one() -> None:
    key_results, objectives = _domain(TAKEN)
    orders, posts = key_results["sales", "orders"], key_results["sales", "posts"]
    assert isinstance(orders, KeyResultForecast) and isinstance(posts, KeyResultForecast)
    assert isinstance(key_results["refunds", "refunds"], NoForecast)  # a ratio
    assert isinstance(objectives["refunds"], NoForecast)
    assert isinstance(objectives["sales"], NoForecast)  # its child has none
    # Judged at a scrape a week later: the forecasts stay those of the refresh.
    samples = _forecast_samples(
        OkrRenderer(_snapshot(), forecasts=ForecastBook()).render(TAKEN + timedelta(days=7))
    )
    expected = {}
    for key, f in (("orders", orders), ("posts", posts)):
        kl = {("shop", "shop-a"), ("objective", "sales"), ("key_result", key)}
        expected["okr_key_result_forecast_probability", frozenset(kl)] = f.probability
        for q, v in (("0.1", f.p10), ("0.5", f.p50), ("0.9", f.p90)):
            expected["okr_key_result_forecast_value", frozenset(kl | {("quantile", q)})] = v
        expected["okr_key_result_required_per_day", frozenset(kl)] = f.required_per_day
        expected["okr_key_result_forecast_basis_days", frozenset(kl)] = f.basis_days
    assert samples == expected
    assert orders.basis_days == 18


def test_an_objective_whose_parts_all_have_forecasts_has_its_probability() -> None:
    active, states = _plan()
    plan = Plan("shop-a", "Europe/Rome", active.plan.objectives[:1])  # sales, without refunds
    ids = {pair: i for pair, i in active.key_result_ids.items() if pair[0] == "sales"}
    snapshot = ProgressSnapshot(TAKEN.timestamp(), (ActivePlan(plan, ids),), states, ())
    pairs = {pair: states[i] for pair, i in ids.items()}
    found = forecast_plan(plan, measure_plan(plan, pairs), pairs, TAKEN).objectives["sales"]
    assert isinstance(found, ObjectiveForecast)
    samples = _forecast_samples(OkrRenderer(snapshot, forecasts=ForecastBook()).render(TAKEN))
    ol = frozenset({("shop", "shop-a"), ("objective", "sales")})
    assert samples["okr_objective_forecast_probability", ol] == found.probability


def test_without_forecasts_the_rest_of_the_exposition_is_byte_for_byte_the_same() -> None:
    with_forecasts = OkrRenderer(_snapshot(), forecasts=ForecastBook()).render(TAKEN)
    without = OkrRenderer(_snapshot()).render(TAKEN)
    kept = [
        line
        for line in with_forecasts.splitlines(keepends=True)
        if line.startswith("#") or line.split("{", 1)[0] not in FORECAST_FAMILIES
    ]
    assert "".join(kept) == without
    assert not _forecast_samples(without)
    for name in FORECAST_FAMILIES:  # the families are announced, empty
        assert f"# TYPE {name} gauge\n" in without


def test_reforecast_computes_again_once_old_and_leaves_the_served_one() -> None:
    renderer = OkrRenderer(_snapshot(), forecasts=ForecastBook(max_age=3600))
    before = renderer.render(TAKEN)
    assert renderer.reforecast(TAKEN.timestamp() + 60) is renderer  # nothing due
    later = TAKEN + timedelta(days=3)
    fresh = renderer.reforecast(later.timestamp())
    assert renderer.render(TAKEN) == before
    assert fresh is not renderer and fresh.snapshot is renderer.snapshot
    orders = _domain(later)[0]["sales", "orders"]
    assert isinstance(orders, KeyResultForecast)
    kl = frozenset({("shop", "shop-a"), ("objective", "sales"), ("key_result", "orders")})
    samples = _forecast_samples(fresh.render(later))
    assert samples["okr_key_result_forecast_probability", kl] == orders.probability
    assert samples["okr_key_result_forecast_basis_days", kl] == 21


def test_objective_trees_forecast_as_the_whole_plan() -> None:
    metric = SimpleMetric("order.placed", "count")

    def objective(key: str, parent: str | None) -> Objective:
        kr = KeyResult("k", "k", metric, target=100)
        return Objective(key, key, "t", "team", PERIOD, (kr,), parent=parent)

    plan = Plan("s", "UTC", (objective("a", None), objective("b", "a"), objective("c", None),
                             objective("d", "b"), objective("e", "missing")))  # fmt: skip
    trees = objective_trees(plan)
    assert [[o.key for o in t.objectives] for t in trees] == [["a", "b", "d"], ["c"], ["e"]]
    days = {PERIOD.start + timedelta(days=i): 2.0 for i in range(19)}
    states = {(o.key, "k"): {"value": SeriesState(38, 38.0, day_totals=days)}
              for o in plan.objectives}  # fmt: skip
    measures = measure_plan(plan, states)
    whole = forecast_plan(plan, measures, states, TAKEN)
    for tree in trees:
        part = forecast_plan(tree, measures, states, TAKEN)
        for o in tree.objectives:
            assert part.objectives[o.key] == whole.objectives[o.key]
            assert part.key_results[o.key, "k"] == whole.key_results[o.key, "k"]
    assert isinstance(whole.objectives["a"], ObjectiveForecast)


def _trees_inputs(n: int, target: float = 100) -> tuple[PlanInputs, ...]:
    """A plan of `n` objectives without parents (n trees), a count key result each."""
    kr = KeyResult("k", "k", ORDERS, target=target)
    plan = Plan("s", "UTC", tuple(
        Objective(f"o{i}", "o", "t", "team", PERIOD, (kr,)) for i in range(n)
    ))  # fmt: skip
    days = {PERIOD.start + timedelta(days=i): 2.0 for i in range(19)}
    states = {(o.key, "k"): {"value": SeriesState(38, 38.0, day_totals=days)}
              for o in plan.objectives}  # fmt: skip
    ids = {(o.key, "k"): i for i, o in enumerate(plan.objectives)}
    active = ActivePlan(plan, ids)
    return (PlanInputs(plan, labels_of(active), measure_plan(plan, states), states),)


def _objectives_shown(book: ForecastBook) -> list[str]:
    text = book.lines()["okr_key_result_forecast_probability"].decode()
    return [line.split('objective="')[1].split('"')[0] for line in text.splitlines()]


def test_the_budget_spreads_trees_over_refreshes_longest_due_first() -> None:
    book = ForecastBook(budget=0.0, minimum=0.0)  # one tree an update, the least there is
    inputs, t = _trees_inputs(3), TAKEN.timestamp()
    shown = []
    for i in range(3):
        assert book.update(inputs, source=t, now=t + i)
        shown.append(_objectives_shown(book))
    assert shown == [["o0"], ["o0", "o1"], ["o0", "o1", "o2"]]  # in plan order
    assert not book.update(inputs, source=t, now=t + 3)  # all done, none old
    assert book.update(inputs, source=t + 10, now=t + 10)  # a new snapshot: o0 is oldest
    assert book.update(inputs, source=t + 10, now=t + 11)  # o1, then o2 (left over)
    assert book.update(inputs, source=t + 10, now=t + 12)
    assert not book.update(inputs, source=t + 10, now=t + 13)


def test_forecasts_grow_old_and_a_redefined_tree_drops_its_lines() -> None:
    book = ForecastBook(max_age=60)
    inputs, t = _trees_inputs(2), TAKEN.timestamp()
    assert book.update(inputs, source=t, now=t)
    assert not book.update(inputs, source=t, now=t + 59)
    assert book.update(inputs, source=t, now=t + 60)
    assert _objectives_shown(book) == ["o0", "o1"]
    # The plan applied again with other targets and one objective fewer: no line is left
    # from the old definitions, even by a budget that leaves trees for later.
    book.budget = book.minimum = 0.0
    assert book.update(_trees_inputs(1, target=500), source=t + 61, now=t + 61)
    assert _objectives_shown(book) == ["o0"]


def test_a_collector_without_forecasts_never_computes_them() -> None:
    snapshots: list[ProgressSnapshot | None] = [_snapshot(), None]
    collector = OkrCollector(lambda now: snapshots.pop(0), forecasts=False)
    collector.refresh()
    collector.refresh()
    assert collector.renderer is not None and not snapshots
    assert not _forecast_samples(collector.renderer.render(TAKEN))


def test_a_collector_serves_forecasts_and_keeps_its_renderer_while_none_is_due() -> None:
    snapshots: list[ProgressSnapshot | None] = [_snapshot(datetime.now(UTC)), None]
    collector = OkrCollector(lambda now: snapshots.pop(0))
    collector.refresh()
    first = collector.renderer
    collector.refresh()
    assert collector.last_error is None and not snapshots
    assert first is not None and collector.renderer is first
    assert _forecast_samples(first.render())


@pytest.mark.parametrize(
    "started, minimum, trees",
    [(None, 0.0, 5), (-100.0, 0.0, 1), (-100.0, 2.5, 3)],
)
def test_the_budget_counts_from_the_refresh_start_with_a_minimum(
    started: float | None, minimum: float, trees: int
) -> None:
    """A clock moving one second a reading: a refresh that already lasted its budget
    forecasts one tree, or for its minimum; one just started forecasts them all."""
    ticks = iter(range(1000))
    book = ForecastBook(budget=10.0, minimum=minimum, clock=lambda: float(next(ticks)))
    assert book.update(_trees_inputs(5), TAKEN.timestamp(), TAKEN.timestamp(), started=started)
    assert len(_objectives_shown(book)) == trees
