"""The KPI families the exporter serves (docs/metrics.md): info, value, health, the band's
bound and the backfill flag, from the KPIs' values over their windows (domain.kpis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from okrflow.domain.history import DayRow
from okrflow.domain.kpis import kpi_progress
from okrflow.domain.model import Kpi, Maintain, Plan, RatioMetric, SimpleMetric
from okrflow.domain.plans import ActivePlan
from okrflow.exporter.exposition import FAMILIES
from okrflow.exporter.render import OkrRenderer
from okrflow.exporter.snapshot import ProgressSnapshot

TODAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
SHOP = "salone-bella"
ORDERS = SimpleMetric("order.placed", "count")
REFUNDS = SimpleMetric("order.refunded", "count")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _orders_per_day() -> list[DayRow]:
    """Orders on each of the 20 days up to TODAY: 1, 2, ..., 20 (day i has i + 1)."""
    first = TODAY - timedelta(days=19)
    return [DayRow(first + timedelta(days=i), i + 1, float(i + 1)) for i in range(20)]


def _render(healthy: Maintain | None, backfill: str | None = None) -> Samples:
    """A shop with three KPIs: orders over 7 days (band `healthy`), the refund rate over
    30 days with no orders (no value), and orders over 1 day without a band."""
    kpis = (
        Kpi("orders", 'Orders "a week"', ORDERS, 7, healthy),
        Kpi("refund-rate", "Refund rate", RatioMetric(REFUNDS, ORDERS), 30, Maintain(below=0.05)),
        Kpi("orders-today", "Orders today", ORDERS, 1),
    )
    plan = Plan(SHOP, "Europe/Rome", (), kpis)
    active = ActivePlan(plan, {}, {"orders": 1, "refund-rate": 2, "orders-today": 3})
    rows = {"value": _orders_per_day()}
    progress = (
        kpi_progress(kpis[0], rows, {}, TODAY, plan.timezone, backfill),
        kpi_progress(kpis[1], {}, {}, TODAY, plan.timezone, "done"),
        kpi_progress(kpis[2], rows, {}, TODAY, plan.timezone),
    )
    snapshot = ProgressSnapshot(NOW.timestamp(), (active,), {}, (), kpis={SHOP: progress})
    text = OkrRenderer(snapshot).render(NOW)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _of(samples: Samples, name: str, kpi: str) -> dict[frozenset[tuple[str, str]], float]:
    return {k: v for (n, k), v in samples.items() if n == name and dict(k)["kpi"] == kpi}


def _kpi(kpi: str, **extra: str) -> frozenset[tuple[str, str]]:
    return frozenset({"shop": SHOP, "kpi": kpi, **extra}.items())


# The last 7 days hold 14 + 15 + ... + 20 orders; today alone 20.
WEEK = sum(range(14, 21))


def test_every_kpi_family_is_declared_and_served() -> None:
    samples = _render(Maintain(above=100))
    declared = {name for name, _, _ in FAMILIES}
    served = {name for name, _ in samples}
    kpi_families = {"okr_kpi_info", "okr_kpi_value", "okr_kpi_healthy", "okr_kpi_healthy_bound",
                    "okr_kpi_backfill"}  # fmt: skip
    assert kpi_families <= declared
    assert kpi_families <= served


def test_value_health_bound_and_info_of_a_kpi_inside_its_band() -> None:
    samples = _render(Maintain(above=100))
    assert WEEK == 119
    assert _of(samples, "okr_kpi_value", "orders") == {_kpi("orders"): WEEK}
    assert _of(samples, "okr_kpi_healthy", "orders") == {_kpi("orders"): 1}
    assert _of(samples, "okr_kpi_healthy_bound", "orders") == {_kpi("orders", side="above"): 100}
    assert _of(samples, "okr_kpi_backfill", "orders") == {_kpi("orders"): 0}
    info = _kpi("orders", title='Orders "a week"', window="7d", band="above 100")
    assert _of(samples, "okr_kpi_info", "orders") == {info: 1}


@pytest.mark.parametrize(
    ("band", "text"), [(Maintain(above=WEEK), f"above {WEEK}"), (Maintain(below=50), "below 50")]
)
def test_a_kpi_outside_its_band_is_unhealthy(band: Maintain, text: str) -> None:
    samples = _render(band)
    assert _of(samples, "okr_kpi_healthy", "orders") == {_kpi("orders"): 0}
    (info,) = _of(samples, "okr_kpi_info", "orders")
    assert dict(info)["band"] == text


def test_a_kpi_without_a_value_has_no_value_and_no_health() -> None:
    samples = _render(None)
    assert _of(samples, "okr_kpi_value", "refund-rate") == {}
    assert _of(samples, "okr_kpi_healthy", "refund-rate") == {}
    assert _of(samples, "okr_kpi_healthy_bound", "refund-rate") == {
        _kpi("refund-rate", side="below"): 0.05
    }
    info = _kpi("refund-rate", title="Refund rate", window="30d", band="below 0.05")
    assert _of(samples, "okr_kpi_info", "refund-rate") == {info: 1}


def test_a_kpi_without_a_band_has_a_value_but_no_health_and_no_bound() -> None:
    samples = _render(None)
    for kpi, value in (("orders", WEEK), ("orders-today", 20)):
        assert _of(samples, "okr_kpi_value", kpi) == {_kpi(kpi): value}
        assert _of(samples, "okr_kpi_healthy", kpi) == {}
        assert _of(samples, "okr_kpi_healthy_bound", kpi) == {}
        (info,) = _of(samples, "okr_kpi_info", kpi)
        assert dict(info)["band"] == ""


@pytest.mark.parametrize("state", ["pending", "running"])
def test_a_kpi_being_backfilled_shows_its_partial_value_but_no_health(state: str) -> None:
    samples = _render(Maintain(above=WEEK), backfill=state)
    assert _of(samples, "okr_kpi_backfill", "orders") == {_kpi("orders"): 1}
    assert _of(samples, "okr_kpi_value", "orders") == {_kpi("orders"): WEEK}
    assert _of(samples, "okr_kpi_healthy", "orders") == {}


def test_a_kpi_whose_backfill_is_done_is_judged() -> None:
    samples = _render(Maintain(above=WEEK), backfill="done")
    assert _of(samples, "okr_kpi_backfill", "orders") == {_kpi("orders"): 0}
    assert _of(samples, "okr_kpi_healthy", "orders") == {_kpi("orders"): 0}
