"""The batch's transaction script: replay skip, dedupe, counting, totals, applied offsets.

This is where exactly-once lives. Offsets recorded here are the truth for "already counted";
the worker resumes from them on every assignment (Kafka's committed offsets only follow).
The SQL is okrflow.store's; the decisions are made here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    return _open(engine, lambda conn: _apply(conn, batch, now, plans, precounted, known))


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


def _apply(
    conn: Connection, batch: DecodedBatch, now: datetime, plans: PlanCache,
    precounted: Precounted | None, known: KnownDistinct | None = None,
) -> BatchResult:  # fmt: skip
    applied = read_applied_offsets(conn, batch.topic, batch.next_offsets, lock=True)
    fresh = not_yet_applied(batch.events, applied)
    replayed = len(batch) - len(fresh) - _fresh_rejected(batch, applied)
    # After the applied_offsets row locks, before anything is counted (lock order: offsets,
    # then the plan clock; apply takes only the clock).
    loaded = plans.refresh(conn, hold_clock=True)
    index = loaded.index
    if precounted is not None and (
        len(fresh) != len(batch.events) or precounted.revision != loaded.revision
    ):
        precounted = None
    rejected: list[tuple[Delivered, InvalidEvent]] = []
    if precounted is not None:
        unique = precounted.unique
        refused = len(precounted.rejected)  # dead-lettered by the caller
    else:
        counted = series_deltas(first_occurrences(fresh), index)
        unique, rejected = counted.accepted, counted.rejected
        refused = len(rejected)
    seen = claim_event_ids(conn, [(d.event.shop, d.event.id) for d in unique], now)
    new = [d for i, d in enumerate(unique) if i not in seen] if seen else unique
    if precounted is not None and not seen:
        totals, deltas, unmatched = precounted.totals, precounted.deltas, precounted.unmatched
    else:
        totals, deltas, unmatched = _count(new, index)
    _write_counts(conn, batch.topic, batch.next_offsets, applied, loaded, totals, deltas, known)
    return BatchResult(
        counted=len(new), duplicates=len(fresh) - refused - len(new), replayed=replayed,
        unmatched=unmatched, rejected=rejected, deltas=deltas, revision=loaded.revision,
    )  # fmt: skip


def write_counted(
    engine: Engine, counted: CountedBatch, topic: str, decode: Callable[[], DecodedBatch],
    now: datetime, plans: PlanCache, known: KnownDistinct | None = None,
) -> OpenBatch:  # fmt: skip
    """write_batch for a batch the helper process counted (okrflow.ingest.helper_protocol): its
    counts are used when they hold (no offset applied before, no id seen before, plans
    unchanged); otherwise `decode` gives the batch, counted here in the transaction, exactly
    as write_batch counts it. Left open like write_batch's."""
    return _open(
        engine, lambda conn: _apply_counted(conn, counted, topic, decode, now, plans, known)
    )


def _open(engine: Engine, apply: Callable[[Connection], BatchResult]) -> OpenBatch:
    """Run `apply` in a new transaction and leave it open (rolled back if `apply` raises)."""
    conn = engine.connect()
    try:
        transaction = conn.begin()
        result = apply(conn)
    except BaseException:
        conn.close()  # rolls the transaction back
        raise
    return OpenBatch(conn, transaction, result)


def _apply_counted(
    conn: Connection, counted: CountedBatch, topic: str, decode: Callable[[], DecodedBatch],
    now: datetime, plans: PlanCache, known: KnownDistinct | None,
) -> BatchResult:  # fmt: skip
    applied = read_applied_offsets(conn, topic, counted.next_offsets, lock=True)
    loaded = plans.refresh(conn, hold_clock=True)  # lock order as in _apply
    replayed = any(offset < applied.get(p, 0) for p, offset in counted.first_offsets.items())
    if replayed or counted.revision != loaded.revision:
        return _apply(conn, _same_decoding(counted, decode()), now, plans, None, known)
    seen = claim_event_ids(conn, counted.keys_json, now)
    if seen:  # the events are needed: decoded here, in the order the helper counted them
        keys = msgspec.json.decode(counted.keys_json, type=list[tuple[str, str]])
        unique = precount(_same_decoding(counted, decode()), loaded).unique
        if [(d.event.shop, d.event.id) for d in unique] != keys:
            raise CountsDisagree("the worker counted other events than the helper")
        new = [d for i, d in enumerate(unique) if i not in seen]
        totals, deltas, unmatched = _count(new, loaded.index)
        fresh = len(new)
    else:
        totals, deltas, unmatched = counted.totals, counted.deltas, counted.unmatched
        fresh = counted.accepted
    _write_counts(conn, topic, counted.next_offsets, applied, loaded, totals, deltas, known)
    return BatchResult(
        counted=fresh, duplicates=counted.decoded - len(counted.value_rejected) - fresh,
        replayed=0, unmatched=unmatched, deltas=deltas, revision=loaded.revision,
    )  # fmt: skip


def _count(
    new: list[Delivered], index: MatchIndex
) -> tuple[dict[tuple[str, str], TypeTotal], dict[SeriesKey, SeriesDelta], int]:
    """Totals, deltas and unmatched events of the events counted for the first time."""
    counted = series_deltas(new, index)
    return _totals(new, index.planned_types), counted.deltas, counted.unmatched


def _write_counts(
    conn: Connection, topic: str, next_offsets: dict[int, int], applied: dict[int, int],
    loaded: LoadedPlans, totals: dict[tuple[str, str], TypeTotal],
    deltas: dict[SeriesKey, SeriesDelta], known: KnownDistinct | None,
) -> None:  # fmt: skip
    """A batch's writes after its ids are claimed: deltas (without the count_distinct values
    `known` says are stored), totals, and its offsets as applied."""
    write_series_deltas(conn, deltas if known is None else known.unknown(loaded.revision, deltas))
    add_shop_event_totals(
        conn, [(s, t, total.events, total.last_event_at) for (s, t), total in totals.items()]
    )
    write_applied_offsets(
        conn, topic, {p: max(o, applied.get(p, 0)) for p, o in next_offsets.items()}
    )


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
