"""`okr_shop_events_total` stays bounded by the plans: shops without a plan are not shown,
and a planned shop's types are the built-in ones, the ones its plan counts, and "other"."""

from __future__ import annotations

from datetime import UTC, date, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from okrflow.domain.model import KeyResult, Objective, Period, Plan, RatioMetric, SimpleMetric
from okrflow.domain.plans import ActivePlan
from okrflow.events.types import BUILT_IN
from okrflow.exporter.collector import OkrCollector
from okrflow.exporter.render import OTHER_TYPE, bounded_shop_events
from okrflow.exporter.snapshot import ProgressSnapshot

PLANNED = "salone-bella"


def _plan() -> ActivePlan:
    leads = KeyResult("leads", "Leads", SimpleMetric("lead.captured", "count"), target=100)
    conversion = KeyResult(
        "conversion",
        "Conversion",
        RatioMetric(
            SimpleMetric("booking.confirmed", "count"), SimpleMetric("lead.captured", "count")
        ),
        target=0.5,
    )
    objective = Objective(
        "growth", "Growth", "marketing", "company",
        Period(date(2026, 1, 1), date(2026, 6, 30)), (leads, conversion),
    )  # fmt: skip
    return ActivePlan(
        Plan(PLANNED, "UTC", (objective,)),
        {("growth", "leads"): 1, ("growth", "conversion"): 2},
    )


def _rows() -> list[tuple[str, str, int]]:
    rows = [(f"unplanned-{i}", t, 1) for i in range(1000) for t in ("order.placed", "x.y")]
    rows += [(PLANNED, f"made.up.{i}", 2) for i in range(500)]
    rows += [
        (PLANNED, "order.placed", 7),
        (PLANNED, "customer.created", 3),
        (PLANNED, "lead.captured", 11),
        (PLANNED, "booking.confirmed", 5),
        (PLANNED, OTHER_TYPE, 4),  # the worker's own "other" row adds up with the rest
    ]
    return rows


def _shop_event_series(text: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["shop"], s.labels["type"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "okr_shop_events"
        for s in family.samples
        if s.name == "okr_shop_events_total"
    }


def test_unplanned_shops_and_made_up_types_produce_no_series() -> None:
    snapshot = ProgressSnapshot(1.0, (_plan(),), {}, tuple(_rows()))
    # What the exporter serves: its registry's health metrics, then the rendered snapshot.
    collector = OkrCollector(lambda _now: snapshot)
    collector.refresh()
    registry = CollectorRegistry()
    registry.register(collector)
    assert collector.renderer is not None
    chunks = [
        generate_latest(registry),
        *collector.renderer.render_chunks(datetime(2026, 2, 1, tzinfo=UTC)),
    ]
    text = b"".join(chunks).decode()

    series = _shop_event_series(text)
    assert series == {
        (PLANNED, "order.placed"): 7,
        (PLANNED, "customer.created"): 3,
        (PLANNED, "lead.captured"): 11,
        (PLANNED, "booking.confirmed"): 5,
        (PLANNED, OTHER_TYPE): 500 * 2 + 4,
    }
    assert "unplanned-" not in text
    assert "made.up." not in text


def test_series_are_bounded_by_the_plan_not_by_the_events() -> None:
    plan = _plan()
    bounded = bounded_shop_events((plan,), _rows())
    types = {t for _, t, _ in bounded}
    assert types <= set(BUILT_IN) | {"lead.captured", "booking.confirmed", OTHER_TYPE}
    assert {shop for shop, _, _ in bounded} == {PLANNED}
    # Totals are kept: nothing of the planned shop is lost, only folded.
    assert sum(n for _, _, n in bounded) == sum(n for s, _, n in _rows() if s == PLANNED)


def test_no_plan_means_no_shop_series() -> None:
    assert bounded_shop_events((), _rows()) == []
