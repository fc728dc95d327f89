from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest

from okrflow.counting.decode import Delivered
from okrflow.counting.matching import MatchIndex, accepts
from okrflow.counting.series import series_deltas
from okrflow.domain.model import (
    Filter,
    KeyResult,
    Maintain,
    Objective,
    Period,
    Plan,
    RatioMetric,
    SimpleMetric,
)
from okrflow.domain.plans import ActivePlan
from okrflow.domain.series import merge_level
from okrflow.events import CloudEvent, decode_event
from tests.factories import encoded


def event(**kwargs: Any) -> CloudEvent:
    kwargs.setdefault("event_type", "shop.custom")
    e = decode_event(encoded(**kwargs))
    assert isinstance(e, CloudEvent)
    return e


@pytest.mark.parametrize(
    ("f", "data", "accepted"),
    [
        (Filter(("data", "platform"), "eq", "tiktok"), {"platform": "tiktok"}, True),
        (Filter(("data", "platform"), "eq", "tiktok"), {"platform": "TikTok"}, False),
        (Filter(("data", "platform"), "eq", "tiktok"), {}, False),
        (Filter(("data", "paid"), "eq", True), {"paid": 1}, False),
        (Filter(("data", "n"), "eq", 1), {"n": 1.0}, True),
        (Filter(("data", "kind"), "in", ("ad", "promo")), {"kind": "promo"}, True),
        (Filter(("data", "kind"), "in", ("ad", "promo")), {"kind": "email"}, False),
        (Filter(("data", "total"), "gt", 0), {"total": 0}, False),
        (Filter(("data", "total"), "gte", 0), {"total": 0}, True),
        (Filter(("data", "total"), "lt", 10), {"total": "5"}, False),
        (Filter(("data", "total"), "lte", 10), {"total": 10}, True),
        (Filter(("data", "a", "b"), "eq", "x"), {"a": {"b": "x"}}, True),
        (Filter(("data", "a", "b"), "eq", "x"), {"a": "x"}, False),
        (Filter(("source",), "eq", "/shops/salone-bella/pos"), {}, True),
    ],
)
def test_filters(f: Filter, data: dict[str, Any], accepted: bool) -> None:
    assert accepts(f, event(data=data)) is accepted


def order(total: float) -> dict[str, Any]:
    return {"order_id": "o", "customer_id": "c", "total": total, "currency": "EUR"}


def _delivered(event: CloudEvent, offset: int = 0) -> Delivered:
    return Delivered(0, offset, event)


def _index(*krs: KeyResult) -> MatchIndex:
    objective = Objective(
        "o", "o", "team", "team", Period(date(2026, 1, 1), date(2026, 1, 31)), krs
    )
    plan = Plan("salone-bella", "Europe/Rome", (objective,))
    return MatchIndex([ActivePlan(plan, {("o", kr.key): i for i, kr in enumerate(krs, start=1)})])


def test_index_matches_shop_type_period_and_filters() -> None:
    index = _index(
        KeyResult("all", "t", SimpleMetric("order.placed", "count"), target=1),
        KeyResult(
            "big",
            "t",
            SimpleMetric(
                "order.placed", "sum", ("data", "total"), (Filter(("data", "total"), "gte", 100),)
            ),
            target=1,
        ),
    )
    inside = event(event_type="order.placed", time="2026-01-01T00:00:00+01:00", data=order(150))
    assert [t.series for t in index.targets(inside)] == [[(1, "value")], [(2, "value")]]
    small = event(event_type="order.placed", time="2026-01-31T23:59:59+01:00", data=order(5))
    assert [t.series for t in index.targets(small)] == [[(1, "value")]]
    assert index.targets(event(event_type="order.placed", time="2026-02-01T00:00:00+01:00")) == []
    assert index.targets(event(event_type="order.placed", shop="other")) == []
    assert index.targets(event(event_type="customer.created", time="2026-01-05T00:00:00Z")) == []


def test_key_results_counting_the_same_way_share_one_target_and_one_delta() -> None:
    clients = SimpleMetric("customer.created", "count")
    index = _index(
        KeyResult("a", "t", clients, target=10),
        KeyResult("b", "t", clients, baseline=5, target=50),  # same counting, other goal
        KeyResult(
            "c",
            "t",
            SimpleMetric(
                "customer.created", "count", where=(Filter(("data", "channel"), "eq", "tiktok"),)
            ),
            target=3,
        ),
        KeyResult("d", "t", RatioMetric(clients, clients), maintain=Maintain(below=2)),
    )
    assert index.target_count == 5
    tiktok = event(event_type="customer.created", time="2026-01-10T10:00:00+01:00",
                   data={"customer_id": "c1", "channel": "tiktok"})  # fmt: skip
    shop = event(event_type="customer.created", time="2026-01-11T10:00:00+01:00",
                 data={"customer_id": "c2", "channel": "shop"})  # fmt: skip
    assert [sorted(t.series) for t in index.targets(tiktok)] == [
        [(1, "value"), (2, "value"), (4, "denominator"), (4, "numerator")],
        [(3, "value")],
    ]
    counted = series_deltas([_delivered(e) for e in (tiktok, shop, shop)], index)
    deltas = counted.deltas
    assert counted.unmatched == 0
    assert set(deltas) == {
        (1, "value"),
        (2, "value"),
        (3, "value"),
        (4, "numerator"),
        (4, "denominator"),
    }
    for key in [(1, "value"), (2, "value"), (4, "numerator"), (4, "denominator")]:
        assert deltas[key].events == 3
        assert deltas[key].days == {date(2026, 1, 10): [1, 1.0], date(2026, 1, 11): [2, 2.0]}
    assert deltas[3, "value"].events == 1


def test_series_deltas_sum_by_local_day_and_skip_non_numbers() -> None:
    index = _index(
        KeyResult("rev", "t", SimpleMetric("order.placed", "sum", ("data", "total")), target=1)
    )
    events = [
        event(
            event_id="1", event_type="order.placed", time="2026-01-05T23:30:00Z", data=order(10)
        ),  # 6 Jan in Rome
        event(
            event_id="2",
            event_type="order.placed",
            time="2026-01-06T10:00:00Z",
            data=order(2.5),
        ),
        event(
            event_id="3",
            event_type="shop.custom",
            time="2026-01-06T10:00:00Z",
            data={"total": "lots"},
        ),
        event(event_id="4", event_type="customer.created", time="2026-01-06T10:00:00Z"),
    ]
    counted = series_deltas([_delivered(e) for e in events], index)
    assert counted.unmatched == 2
    assert counted.deltas[1, "value"].days == {date(2026, 1, 6): [2, 12.5]}
    assert counted.rejected == []


def test_merge_level() -> None:
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    assert merge_level("latest", 5, t2, 9, t1) == (5, t2)  # a late, older event does not win
    assert merge_level("latest", 5, t1, 9, t2) == (9, t2)
    assert merge_level("max", 5, t1, 3, t2) == (5, t1)
    assert merge_level("min", 5, t1, 3, t2) == (3, t2)
    assert merge_level("max", None, None, 3, t2) == (3, t2)


def test_a_number_beyond_2_to_the_53_is_rejected_and_counts_nowhere() -> None:
    """The decoder refuses such events (okrflow.events.numbers); counting keeps the same
    rule for an event made without it, so these are built past the decoder."""
    index = _index(
        KeyResult("rev", "t", SimpleMetric("shop.sale", "sum", ("data", "total")), target=1),
        KeyResult("n", "t", SimpleMetric("shop.sale", "count"), target=1),
        KeyResult("top", "t", SimpleMetric("shop.sale", "max", ("data", "total")), target=1),
    )

    def sale(event_id: str, total: Any) -> Delivered:
        valid = event(event_id=event_id, event_type="shop.sale", time="2026-01-06T10:00:00Z")
        return _delivered(msgspec.structs.replace(valid, data={"total": total}))

    huge = int("9" * 400)
    counted = series_deltas(
        [sale("1", 5), sale("2", huge), sale("3", 1.7e308), sale("4", -(2**60)), sale("5", 2**53)],
        index,
    )
    assert [(d.event.id, why.reason) for d, why in counted.rejected] == [
        ("2", "bad_number"), ("3", "bad_number"), ("4", "bad_number"),
    ]  # fmt: skip
    assert "400-digit" in counted.rejected[0][1].error
    assert [d.event.id for d in counted.accepted] == ["1", "5"]
    assert counted.deltas[1, "value"].days == {date(2026, 1, 6): [2, 5 + 2.0**53]}
    assert counted.deltas[2, "value"].events == 2  # the count skips rejected events too
    assert counted.deltas[3, "value"].level == 2.0**53
