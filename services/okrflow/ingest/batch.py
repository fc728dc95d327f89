"""A batch of Kafka messages, decoded: the unit the database sees in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from okrflow.events import CloudEvent, InvalidEvent, decode_event
from okrflow.events.envelope import Headers


@dataclass(frozen=True, slots=True)
class Delivered:
    """A valid event and where Kafka delivered it."""

    partition: int
    offset: int
    event: CloudEvent


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that is not a valid event, with its reason."""

    partition: int
    offset: int
    value: bytes | None
    invalid: InvalidEvent


@dataclass
class DecodedBatch:
    """Every message of one batch: the valid events, the rejected messages, and for each
    partition the offset that follows the batch's last message (what gets recorded as applied)."""

    topic: str
    events: list[Delivered] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events) + len(self.rejected)


def decode_batch(
    topic: str,
    messages: Iterable[
        tuple[int, int, bytes | None] | tuple[int, int, bytes | None, Headers | None]
    ],
    max_bytes: int,
) -> DecodedBatch:
    """Decode (partition, offset, value[, headers]) tuples; never raises for bad input."""
    batch = DecodedBatch(topic)
    next_offsets = batch.next_offsets
    for message in messages:
        partition, offset, value = message[0], message[1], message[2]
        decoded = decode_event(value, max_bytes, message[3] if len(message) > 3 else None)
        if isinstance(decoded, CloudEvent):
            batch.events.append(Delivered(partition, offset, decoded))
        else:
            batch.rejected.append(Rejected(partition, offset, value, decoded))
        if offset >= next_offsets.get(partition, -1):
            next_offsets[partition] = offset + 1
    return batch
