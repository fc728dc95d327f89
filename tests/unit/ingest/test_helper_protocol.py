"""The counting helper's protocol (okrflow.ingest.helper_protocol, helper_process): messages
packed and unpacked unchanged, and a batch counted from the packed messages equal to one
counted in place."""

from __future__ import annotations

import msgspec

from okrflow.counting.decode import Message, decode_batch
from okrflow.ingest.helper_process import count_packed
from okrflow.ingest.helper_protocol import Packed, count_batch
from okrflow.ingest.plan_cache import LoadedPlans
from okrflow.ingest.transaction import precount
from tests.factories import encoded
from tests.unit.counting.test_series_oracle import INDEX, PLANS

MESSAGES = [
    Message(0, 5, encoded(event_id="a", event_type="order.placed", shop="salone-bella")),
    Message(0, 6, None),
    Message(1, 2, b"not json", [("trace", b"x")]),
    Message(1, 3, encoded(event_id="a", event_type="order.placed", shop="salone-bella")),
    Message(2, 9, b"", [("ce_specversion", b"1.0"), ("k", None)]),
]


def test_packed_messages_come_back_unchanged() -> None:
    assert list(Packed.of(MESSAGES).messages()) == [
        Message(m.partition, m.offset, m.value, list(m.headers) if m.headers else None)
        for m in MESSAGES
    ]
    assert list(Packed.of([]).messages()) == []


def _sale(i: int) -> bytes:
    data = {"v": i % 7, "kind": "ad" if i % 2 else "promo", "n": {"v": 2**60 if i == 7 else 1}}
    return msgspec.json.encode({
        "specversion": "1.0", "id": f"e{i % 40}", "source": "/s", "type": "sale",
        "time": f"2026-03-{1 + i % 28:02d}T10:00:00+01:00", "shop": "rome", "data": data,
    })  # fmt: skip


def test_counted_from_packed_messages_equals_counted_in_place() -> None:
    events = [Message(i % 3, 100 + i, _sale(i)) for i in range(120)]
    batch = decode_batch("t", [*MESSAGES, *events], 1 << 20)
    here = precount(batch, LoadedPlans(3, INDEX, PLANS))
    counted = count_packed("t", Packed.of([*MESSAGES, *events]), 1 << 20, 3, PLANS)
    assert counted is not None
    assert counted == count_batch(batch, INDEX, 3)
    assert counted.deltas == here.deltas and counted.totals == here.totals
    assert counted.unmatched == here.unmatched
    assert msgspec.json.decode(counted.keys_json) == [
        [d.event.shop, d.event.id] for d in here.unique
    ]
    # 2^60 in event 7's data: refused by the decoder (bad_number), whatever the plans read.
    assert counted.value_rejected == []
    assert [(p, o) for p, o, _ in counted.decode_rejected] == [(0, 6), (1, 2), (2, 9), (1, 107)]
    assert counted.decode_rejected[-1][2].reason == "bad_number"
    assert counted.first_offsets == {0: 5, 1: 2, 2: 9}
    assert counted.next_offsets == batch.next_offsets
    assert counted.duplicates == len(batch.events) - len(here.unique)


def test_the_helper_asks_for_plans_it_does_not_hold() -> None:
    packed = Packed.of(MESSAGES)
    assert count_packed("t", packed, 1 << 20, 3, PLANS) is not None
    assert count_packed("t", packed, 1 << 20, 3, None) is not None  # kept
    assert count_packed("t", packed, 1 << 20, 4, None) is None  # another revision: send them
