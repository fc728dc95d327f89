"""A batch on its way through the sink: prepared (decoded and counted), then pending (written
in an open transaction, with every dead letter it has)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from okrflow.counting.decode import DecodedBatch, Delivered, MessageLike, Rejected
from okrflow.counting.decode import rejected_message as _rejected_message
from okrflow.events import InvalidEvent
from okrflow.ingest.helper_protocol import CountedBatch, Where
from okrflow.ingest.transaction import BatchResult, Precounted


@dataclass(frozen=True)
class PreparedBatch:
    """A closed batch, counted by the helper process (`counted`), or here (`batch` and
    `precounted`: without a helper, or when the helper failed)."""

    records: Sequence[MessageLike]
    next_offsets: dict[int, int]
    dead_letters: list[Rejected]  # decode failures and events refused for their values
    counted: CountedBatch | None = None
    batch: DecodedBatch | None = None
    precounted: Precounted | None = None
    closed_at: float = 0.0  # the clock's time() when the batch closed
    prepared_at: float = 0.0  # its time() when the batch's preparation ended

    def rejected(self, found: Sequence[Where]) -> list[Rejected]:
        """Dead letters for (partition, offset, why), from their original records."""
        if not found:
            return []
        wanted = {(partition, offset): invalid for partition, offset, invalid in found}
        return [
            _rejected_message(r, wanted[r.partition, r.offset])
            for r in self.records
            if (r.partition, r.offset) in wanted
        ]


def where(found: Sequence[tuple[Delivered, InvalidEvent]]) -> list[Where]:
    """(partition, offset, why) of each event found."""
    return [(d.partition, d.offset, invalid) for d, invalid in found]


class WrittenBatch(Protocol):
    """A batch's transaction, written and left open (okrflow.ingest.transaction.OpenBatch,
    or a test's)."""

    @property
    def result(self) -> BatchResult: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@dataclass(frozen=True)
class PendingBatch:
    """A batch written in an open transaction, with every dead letter it has."""

    prepared: PreparedBatch
    written: WrittenBatch
    dead_letters: list[Rejected]  # in (partition, offset) order
    started: float  # the clock's monotonic() at the start of the write
    started_at: float  # its time() then
