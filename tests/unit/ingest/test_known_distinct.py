"""KnownDistinct: which count_distinct values a batch may leave out of its write."""

from __future__ import annotations

from datetime import date

from okrflow.domain.series import SeriesDelta
from okrflow.ingest.known_distinct import KnownDistinct

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
KEY = (7, "value")


def _delta(**values: date) -> SeriesDelta:
    delta = SeriesDelta("count_distinct")
    delta.distinct = dict(values)
    return delta


def test_a_value_stored_on_or_before_its_day_is_left_out_and_an_earlier_day_is_kept() -> None:
    known = KnownDistinct()
    assert known.unknown(1, {KEY: _delta(a=D2)})[KEY].distinct == {"a": D2}  # nothing known
    known.learn(1, {KEY: _delta(a=D2, b=D3)})
    given = {KEY: _delta(a=D2, b=D1, c=D3), (8, "value"): _delta(a=D1)}
    left = known.unknown(1, given)
    assert left[KEY].distinct == {"b": D1, "c": D3}  # a: same day; b: earlier, may move
    assert left[8, "value"].distinct == {"a": D1}  # another series knows nothing
    assert given[KEY].distinct == {"a": D2, "b": D1, "c": D3}  # not modified
    known.learn(1, {KEY: _delta(b=D1, a=D3)})  # a later day does not raise the known day
    assert known.unknown(1, {KEY: _delta(a=D2, b=D2)})[KEY].distinct == {}
    assert len(known) == 2


def test_a_new_plan_revision_forgets_everything() -> None:
    known = KnownDistinct()
    known.learn(1, {KEY: _delta(a=D1)})
    assert known.unknown(2, {KEY: _delta(a=D2)})[KEY].distinct == {"a": D2}
    assert len(known) == 0


def test_past_its_bound_it_forgets_everything() -> None:
    known = KnownDistinct(max_values=3)
    known.learn(1, {KEY: _delta(a=D1, b=D1)})
    assert len(known) == 2
    known.learn(1, {KEY: _delta(c=D1, d=D1)})
    assert len(known) == 0
    assert known.unknown(1, {KEY: _delta(a=D1)})[KEY].distinct == {"a": D1}


def test_other_aggregates_pass_through_unchanged() -> None:
    known = KnownDistinct()
    known.learn(1, {KEY: _delta(a=D1)})
    count = SeriesDelta("count")
    count.days = {D1: [3, 3.0]}
    assert known.unknown(1, {(9, "value"): count})[9, "value"] is count
