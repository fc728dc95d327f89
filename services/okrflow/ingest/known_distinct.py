"""Count-distinct values this worker knows are stored, so a batch skips writing them. Pure.

A count_distinct value is stored once per series with the earliest local day of any event
carrying it (okrflow.store.counters), and that day only ever moves earlier; rows are never
deleted (key results are retired, not removed, and ids are not reused). So once a batch that
carried value V on day D has committed, V is stored on D or earlier for good, and any later
batch carrying V on a day >= D changes nothing: it need not send V to the database at all.
With customers who come back, most values of a batch are such repeats; each costs the
database an index probe for the insert and another for the day check (measured: 40% of a
batch's write time in `make bench`).

What is known is learnt only from committed batches (a trial or a rolled-back transaction
teaches nothing), forgotten whenever the plan revision moves (an apply may have re-metered a
key result), and bounded: past MAX_VALUES values, everything is forgotten and relearnt
(the worker's memory stays flat; measured in `make bench-soak`).
Another worker's values are simply unknown here, and go to the database as before.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from okrflow.domain.series import SeriesDelta, SeriesKey

MAX_VALUES = 50_000  # about 8 MB of values and days


class KnownDistinct:
    """Per series, value -> a day on or after the day it is stored with."""

    def __init__(self, max_values: int = MAX_VALUES) -> None:
        self.max_values = max_values
        self._revision: int | None = None
        self._days: dict[SeriesKey, dict[str, date]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def unknown(
        self, revision: int, deltas: dict[SeriesKey, SeriesDelta]
    ) -> dict[SeriesKey, SeriesDelta]:
        """`deltas` without the count_distinct values known to be stored on or before the
        day they carry here (copies where something is left out; `deltas` is not modified).
        `revision` is the plan revision the batch is counted under."""
        if revision != self._revision:
            self.forget()
            self._revision = revision
        if not self._days:
            return deltas
        out: dict[SeriesKey, SeriesDelta] = {}
        for key, delta in deltas.items():
            known = self._days.get(key)
            if known is None or not delta.distinct:
                out[key] = delta
                continue
            missing = date.max
            kept = {
                value: day
                for value, day in delta.distinct.items()
                if known.get(value, missing) > day
            }
            out[key] = delta if len(kept) == len(delta.distinct) else replace(delta, distinct=kept)
        return out

    def learn(self, revision: int, deltas: dict[SeriesKey, SeriesDelta]) -> None:
        """After the batch counted under `revision` with `deltas` has committed: each of its
        count_distinct values is stored on the day it carries, or earlier."""
        if revision != self._revision:
            self.forget()
            self._revision = revision
        for key, delta in deltas.items():
            if not delta.distinct:
                continue
            known = self._days.setdefault(key, {})
            before = len(known)
            for value, day in delta.distinct.items():
                stored = known.get(value)
                if stored is None or day < stored:
                    known[value] = day
            self._size += len(known) - before
        if self._size > self.max_values:
            self.forget()

    def forget(self) -> None:
        self._days.clear()
        self._size = 0
