"""What runs in the counting helper process: its start, and counting one packed batch.

The worker's side, which starts this process and sends it the batches, is
okrflow.ingest.helper_client; what crosses between them is okrflow.ingest.helper_protocol.
"""

from __future__ import annotations

import signal

from okrflow.counting.decode import decode_batch
from okrflow.counting.matching import MatchIndex
from okrflow.domain.plans import ActivePlan
from okrflow.ingest.helper_protocol import CountedBatch, Packed, count_batch
from okrflow.ops.lifeline import die_with_parent

_index: tuple[int, MatchIndex] | None = None  # the plans last sent, by revision


def helper_started(worker: int) -> None:
    """The helper's initializer: the worker alone decides when it stops (a Ctrl-C or SIGTERM
    to the process group must not kill it under a batch); and when process `worker` is gone
    (even killed with SIGKILL, even before this ran), the helper is killed at once: the worker
    recounts whatever it had sent (okrflow.ops.lifeline)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(worker, signal.SIGKILL)


def count_packed(
    topic: str, packed: Packed, max_bytes: int, revision: int,
    plans: list[ActivePlan] | None,
) -> CountedBatch | None:  # fmt: skip
    """Decode and count in the helper; None when it does not hold the plans of `revision`
    (send them again with `plans`)."""
    global _index
    if plans is not None:
        _index = (revision, MatchIndex(plans))
    if _index is None or _index[0] != revision:
        return None
    batch = decode_batch(topic, packed.messages(), max_bytes)
    return count_batch(batch, _index[1], revision)
