"""The batch's transaction script: replay skip, dedupe, counting, totals, applied offsets.

This is where exactly-once lives. Offsets recorded here are the truth for "already counted";
the worker resumes from them on every assignment (Kafka's committed offsets only follow).
The SQL is okrflow.store's; the decisions are made here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import msgspec
from sqlalchemy import Connection, Engine, RootTransaction

from okrflow.counting.decode import DecodedBatch, Delivered
from okrflow.counting.matching import MatchIndex
from okrflow.counting.series import series_deltas
from okrflow.counting.totals import TypeTotal, first_occurrences, not_yet_applied
from okrflow.counting.totals import totals_by_shop_type as _totals
from okrflow.domain.series import SeriesDelta, SeriesKey
from okrflow.events import InvalidEvent
from okrflow.ingest.helper_protocol import CountedBatch
from okrflow.ingest.known_distinct import KnownDistinct
from okrflow.ingest.plan_cache import LoadedPlans, PlanCache
from okrflow.store.batches import (
    add_shop_event_totals,
    claim_event_ids,
    read_applied_offsets,
    write_applied_offsets,
)
from okrflow.store.counters import write_series_deltas


@dataclass(frozen=True)
class BatchResult:
    counted: int  # valid events counted for the first time
    duplicates: int  # valid events whose (shop, id) was already counted
    replayed: int  # messages at offsets an earlier transaction already applied
    unmatched: int = 0  # counted events that moved no key result
    # Events the transaction refused for their values (plans changed since precount): they
    # are dead-lettered like the precounted ones.
    rejected: list[tuple[Delivered, InvalidEvent]] = field(default_factory=list)
    # What the batch counted, and under which plan revision (for KnownDistinct.learn).
    deltas: dict[SeriesKey, SeriesDelta] = field(default_factory=dict)
    revision: int = -1


@dataclass(frozen=True)
class Precounted:
    """What a batch would add if none of its events had been seen: computed outside the
    transaction (overlapping the previous batch's database time), used when that holds."""

    revision: int
    unique: list[Delivered]  # first occurrence of each (shop, id), values accepted
    totals: dict[tuple[str, str], TypeTotal]
    deltas: dict[SeriesKey, SeriesDelta]
    unmatched: int
    rejected: list[tuple[Delivered, InvalidEvent]]  # refused for their values


def precount(batch: DecodedBatch, loaded: LoadedPlans) -> Precounted:
    """Count a batch against the given plans. Pure CPU work, no database."""
    counted = series_deltas(first_occurrences(batch.events), loaded.index)
    return Precounted(
        loaded.revision,
        counted.accepted,
        _totals(counted.accepted, loaded.index.planned_types),
        counted.deltas,
        counted.unmatched,
        counted.rejected,
    )


class OpenBatch:
    """A batch whose transaction is written but not committed yet (see write_batch)."""

    def __init__(self, conn: Connection, transaction: RootTransaction, result: BatchResult):
        self._conn = conn
        self._transaction = transaction
        self.result = result

    def commit(self) -> None:
        """Commit the transaction (blocks; raises SQLAlchemy errors, then nothing is applied)."""
        try:
            self._transaction.commit()
        finally:
            self._conn.close()

    def rollback(self) -> None:
        try:
            self._transaction.rollback()
        finally:
            self._conn.close()


def write_batch(
    engine: Engine, batch: DecodedBatch, now: datetime, plans: PlanCache,
    precounted: Precounted | None = None, known: KnownDistinct | None = None,
) -> OpenBatch:  # fmt: skip
    """Count the batch's new events and record its offsets as applied, in one transaction
    that is left open: the caller commits or rolls it back, from the same thread.

    `precounted` is used when it still holds (no replayed offsets, no event id seen before,
    plans unchanged); otherwise the batch is counted again here, inside the transaction.
    Blocks on the database; raises SQLAlchemy errors, in which case nothing was written and
    the caller must not commit the batch's Kafka offsets.
    """

    def counting(applied: dict[int, int], loaded: LoadedPlans) -> _Counting:
        return _decoded_counting(batch, precounted, applied, loaded)

    return _open(engine, batch.topic, batch.next_offsets, counting, now, plans, known)


def write_counted(
    engine: Engine, counted: CountedBatch, topic: str, decode: Callable[[], DecodedBatch],
    now: datetime, plans: PlanCache, known: KnownDistinct | None = None,
) -> OpenBatch:  # fmt: skip
    """write_batch for a batch the helper process counted (okrflow.ingest.helper_protocol): its
    counts are used when they hold (no offset applied before, no id seen before, plans
    unchanged); otherwise `decode` gives the batch, counted here in the transaction, exactly
    as write_batch counts it. Left open like write_batch's."""

    def counting(applied: dict[int, int], loaded: LoadedPlans) -> _Counting:
        return _helper_counting(counted, decode, applied, loaded)

    return _open(engine, topic, counted.next_offsets, counting, now, plans, known)


def apply_batch(
    engine: Engine, batch: DecodedBatch, now: datetime, plans: PlanCache,
    precounted: Precounted | None = None, *, commit: bool = True,
) -> BatchResult:  # fmt: skip
    """write_batch, then commit (or, with `commit=False`, roll back: a trial)."""
    if not batch.next_offsets:
        return BatchResult(0, 0, 0)
    written = write_batch(engine, batch, now, plans, precounted)
    if commit:
        written.commit()
    else:
        written.rollback()
    return written.result


_Counts = tuple[dict[tuple[str, str], TypeTotal], dict[SeriesKey, SeriesDelta], int]


@dataclass(frozen=True)
class _Counting:
    """What a batch counts, decided once its offsets are locked and the plans read: the
    (shop, id) to claim, in order, and what they add if none was seen before."""

    keys: list[tuple[str, str]] | bytes  # a JSON array of [shop, id] pairs, from the helper
    events: Callable[[], list[Delivered]]  # the events of `keys`, in their order
    counts: _Counts  # totals, deltas, unmatched of all of them
    accepted: int  # len(keys)
    valid: int  # valid events not replayed nor refused for their values
    replayed: int  # messages at offsets an earlier transaction already applied
    rejected: list[tuple[Delivered, InvalidEvent]] = field(default_factory=list)


# What a batch counts, given its applied offsets (locked) and the plans in force.
_CountingOf = Callable[[dict[int, int], LoadedPlans], _Counting]


def _open(
    engine: Engine, topic: str, next_offsets: dict[int, int], counting: _CountingOf,
    now: datetime, plans: PlanCache, known: KnownDistinct | None,
) -> OpenBatch:  # fmt: skip
    """The batch's transaction, left open (rolled back if writing it raises)."""
    conn = engine.connect()
    try:
        transaction = conn.begin()
        result = _write(conn, topic, next_offsets, counting, now, plans, known)
    except BaseException:
        conn.close()  # rolls the transaction back
        raise
    return OpenBatch(conn, transaction, result)


def _write(
    conn: Connection, topic: str, next_offsets: dict[int, int], counting_of: _CountingOf,
    now: datetime, plans: PlanCache, known: KnownDistinct | None,
) -> BatchResult:  # fmt: skip
    """The one write path: lock the applied offsets, then share-lock the plan clock (lock
    order: offsets, then the clock; apply takes only the clock), claim the events' ids, and
    write what the new ones add with the next applied offsets."""
    applied = read_applied_offsets(conn, topic, next_offsets, lock=True)
    loaded = plans.refresh(conn, hold_clock=True)
    counting = counting_of(applied, loaded)
    seen = claim_event_ids(conn, counting.keys, now)
    if seen:  # the events are needed: those never seen before are counted again
        new = [d for i, d in enumerate(counting.events()) if i not in seen]
        totals, deltas, unmatched = _count(new, loaded.index)
        counted = len(new)
    else:
        totals, deltas, unmatched = counting.counts
        counted = counting.accepted
    write_series_deltas(conn, deltas if known is None else known.unknown(loaded.revision, deltas))
    add_shop_event_totals(
        conn, [(s, t, total.events, total.last_event_at) for (s, t), total in totals.items()]
    )
    write_applied_offsets(
        conn, topic, {p: max(o, applied.get(p, 0)) for p, o in next_offsets.items()}
    )
    return BatchResult(
        counted=counted, duplicates=counting.valid - counted, replayed=counting.replayed,
        unmatched=unmatched, rejected=counting.rejected, deltas=deltas, revision=loaded.revision,
    )  # fmt: skip


def _decoded_counting(
    batch: DecodedBatch, precounted: Precounted | None, applied: dict[int, int],
    loaded: LoadedPlans,
) -> _Counting:  # fmt: skip
    """A batch the worker decoded: its precount if it holds (nothing replayed, the same plan
    revision), else counted here."""
    fresh = not_yet_applied(batch.events, applied)
    replayed = len(batch) - len(fresh) - _fresh_rejected(batch, applied)
    if precounted is not None and (
        len(fresh) == len(batch.events) and precounted.revision == loaded.revision
    ):
        unique = precounted.unique  # its rejected events are dead-lettered by the caller
        counts = (precounted.totals, precounted.deltas, precounted.unmatched)
        valid, rejected = len(fresh) - len(precounted.rejected), []
    else:
        recounted = precount(replace(batch, events=fresh), loaded)
        unique, rejected = recounted.unique, recounted.rejected
        counts = (recounted.totals, recounted.deltas, recounted.unmatched)
        valid = len(fresh) - len(rejected)
    keys = [(d.event.shop, d.event.id) for d in unique]
    return _Counting(keys, lambda: unique, counts, len(unique), valid, replayed, rejected)


def _helper_counting(
    counted: CountedBatch, decode: Callable[[], DecodedBatch], applied: dict[int, int],
    loaded: LoadedPlans,
) -> _Counting:  # fmt: skip
    """A batch the helper counted: its counts if they hold (no offset applied before, the
    same plan revision), else the worker's own decoding, counted here."""
    replayed = any(offset < applied.get(p, 0) for p, offset in counted.first_offsets.items())
    if replayed or counted.revision != loaded.revision:
        return _decoded_counting(_same_decoding(counted, decode()), None, applied, loaded)

    def events() -> list[Delivered]:
        """Decoded here, in the order the helper counted them (when an id was seen)."""
        keys = msgspec.json.decode(counted.keys_json, type=list[tuple[str, str]])
        unique = precount(_same_decoding(counted, decode()), loaded).unique
        if [(d.event.shop, d.event.id) for d in unique] != keys:
            raise CountsDisagree("the worker counted other events than the helper")
        return unique

    counts = (counted.totals, counted.deltas, counted.unmatched)
    valid = counted.decoded - len(counted.value_rejected)
    return _Counting(counted.keys_json, events, counts, counted.accepted, valid, 0)


def _count(new: list[Delivered], index: MatchIndex) -> _Counts:
    """Totals, deltas and unmatched events of the events counted for the first time."""
    counted = series_deltas(new, index)
    return _totals(new, index.planned_types), counted.deltas, counted.unmatched


class CountsDisagree(RuntimeError):
    """The worker's own decoding of a batch differs from its counting helper's (a message
    nested within a few levels of the decoder's depth limit can be `too_deep` in one process
    and not in the other): the batch must be decoded, counted and dead-lettered by the worker
    alone (okrflow.ingest.sink does)."""


def _same_decoding(counted: CountedBatch, batch: DecodedBatch) -> DecodedBatch:
    """`batch`, if the worker rejected exactly the messages the helper rejected."""
    if {(r.partition, r.offset) for r in batch.rejected} != {
        (p, o) for p, o, _ in counted.decode_rejected
    }:
        raise CountsDisagree("the worker decoded the batch differently from the helper")
    return batch


def _fresh_rejected(batch: DecodedBatch, applied: dict[int, int]) -> int:
    return sum(1 for r in batch.rejected if r.offset >= applied.get(r.partition, 0))
