"""Dead letters: invalid messages go unchanged to the DLQ topic with reason headers.

A dead letter keeps the message's key, value and headers, and adds `okrflow.reason`,
`okrflow.error`, `okrflow.topic`, `okrflow.partition` and `okrflow.offset` headers.

Exactly once, like the counters: source partition p goes to DLQ partition p, in offset order,
and each dead letter carries its source offset. Before writing to a partition the first time
(after start or a rebalance), the worker reads that partition's last dead letter: anything at
or below its source offset was already written by an earlier run that crashed before its
database commit, and is not written again.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from okrflow.counting.decode import Rejected
from okrflow.kafkaclient import client_kwargs
from okrflow.settings import Settings
from okrflow.topics import DLQ_MAX_MESSAGE_BYTES

HEADER_REASON = "okrflow.reason"
HEADER_ERROR = "okrflow.error"
HEADER_TOPIC = "okrflow.topic"
HEADER_PARTITION = "okrflow.partition"
HEADER_OFFSET = "okrflow.offset"


def dead_letter_headers(topic: str, rejected: Rejected) -> list[tuple[str, bytes]]:
    """The producer's own headers (a header without a value keeps an empty one), then
    okrflow's: reason, error, and where the message came from."""
    return [
        *((k, v or b"") for k, v in rejected.headers or () if not k.startswith("okrflow.")),
        (HEADER_REASON, rejected.invalid.reason.encode()),
        (HEADER_ERROR, rejected.invalid.error[:1000].encode()),
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(rejected.partition).encode()),
        (HEADER_OFFSET, str(rejected.offset).encode()),
    ]


class DeadLetterWriter:
    """Writes rejected messages to the DLQ topic, at most once per source offset."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.source_topic = settings.events_topic
        self.dlq_topic = settings.dlq_topic
        self._producer: AIOKafkaProducer | None = None
        self._watermarks: dict[int, int] = {}  # source partition -> last source offset written

    def forget_watermarks(self) -> None:
        """After a rebalance another worker may have written: read the DLQ again."""
        self._watermarks.clear()

    async def write(self, rejected: Sequence[Rejected]) -> int:
        """Write what is not yet in the DLQ and wait for the broker's acknowledgement.
        Returns how many were written. Raises aiokafka errors when the broker is unreachable."""
        if not rejected:
            return 0
        if self._producer is None:
            self._producer = AIOKafkaProducer(
                **client_kwargs(self.settings), acks="all", enable_idempotence=True,
                max_request_size=DLQ_MAX_MESSAGE_BYTES,
            )  # fmt: skip
            await self._producer.start()
        written = []
        for r in sorted(rejected, key=lambda r: (r.partition, r.offset)):
            if r.partition not in self._watermarks:
                self._watermarks[r.partition] = await self._last_written(r.partition)
            if r.offset <= self._watermarks[r.partition]:
                continue
            # A tombstone (no value) keeps its key; Kafka needs one of the two, so a message
            # with neither gets an empty key.
            key = r.key if r.key is not None or r.value is not None else b""
            written.append(
                await self._producer.send(
                    self.dlq_topic, r.value, key=key, partition=r.partition,
                    headers=dead_letter_headers(self.source_topic, r),
                )
            )  # fmt: skip
            self._watermarks[r.partition] = r.offset
        for future in written:
            await future
        return len(written)

    async def _last_written(self, partition: int) -> int:
        consumer = AIOKafkaConsumer(**client_kwargs(self.settings), enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(self.dlq_topic, partition)
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            if end == 0:
                return -1
            consumer.seek(tp, end - 1)
            records = (await consumer.getmany(tp, timeout_ms=5000)).get(tp, [])
            for record in reversed(records):
                offset = dict(record.headers or ()).get(HEADER_OFFSET)
                if offset is not None:
                    return int(offset)
            return -1
        finally:
            await consumer.stop()

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
