from okrflow.counting.decode import Delivered
from okrflow.counting.totals import first_occurrences, not_yet_applied, totals_by_shop_type
from okrflow.events import CloudEvent, decode_event
from tests.factories import decode_batch_of, encoded


def _delivered(partition: int, offset: int, **kwargs: object) -> Delivered:
    event = decode_event(encoded(**kwargs))  # type: ignore[arg-type]
    assert isinstance(event, CloudEvent)
    return Delivered(partition, offset, event)


def test_decode_batch_splits_valid_and_rejected_and_tracks_next_offsets() -> None:
    batch = decode_batch_of(
        "t",
        [(0, 5, encoded(event_id="a")), (1, 9, b"{oops"), (0, 6, encoded(event_id="b"))],
        10_000,
    )
    assert [d.event.id for d in batch.events] == ["a", "b"]
    assert [(r.partition, r.offset, r.invalid.reason) for r in batch.rejected] == [
        (1, 9, "not_json")
    ]
    assert batch.next_offsets == {0: 7, 1: 10}
    assert len(batch) == 3


def test_not_yet_applied_drops_offsets_below_the_recorded_next_offset() -> None:
    events = [_delivered(0, o, event_id=str(o)) for o in range(5)] + [
        _delivered(1, 0, event_id="p1")
    ]
    kept = not_yet_applied(events, {0: 3})
    assert [(d.partition, d.offset) for d in kept] == [(0, 3), (0, 4), (1, 0)]


def test_first_occurrences_keeps_the_first_of_each_shop_and_id() -> None:
    events = [
        _delivered(0, 0, event_id="x"),
        _delivered(0, 1, event_id="x"),
        _delivered(0, 2, event_id="x", shop="other-shop"),
        _delivered(1, 0, event_id="y"),
    ]
    kept = first_occurrences(events)
    assert [(d.partition, d.offset) for d in kept] == [(0, 0), (0, 2), (1, 0)]


def test_totals_by_shop_type_counts_and_keeps_latest_time() -> None:
    events = [
        _delivered(0, 0, event_id="1", time="2026-01-01T10:00:00Z"),
        _delivered(0, 1, event_id="2", time="2026-01-03T10:00:00Z"),
        _delivered(0, 2, event_id="3", time="2026-01-02T10:00:00Z"),
        _delivered(0, 3, event_id="4", event_type="order.placed", data=None),
        _delivered(0, 4, event_id="5", event_type="shop.posted", data={}),
        _delivered(0, 5, event_id="6", event_type="made.up", data={}),
        _delivered(0, 6, event_id="7", event_type="made.up.too", data={}),
        _delivered(0, 7, event_id="8", shop="unplanned"),
    ]
    totals = totals_by_shop_type(events, {"salone-bella": {"shop.posted"}})
    assert totals[("salone-bella", "customer.created")].events == 3
    assert totals[("salone-bella", "customer.created")].last_event_at.day == 3
    assert totals[("salone-bella", "order.placed")].events == 1
    assert totals[("salone-bella", "shop.posted")].events == 1
    assert totals[("salone-bella", "other")].events == 2
    assert {shop for shop, _ in totals} == {"salone-bella"}
