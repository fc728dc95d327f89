"""Stop instead of dead-lettering everything when upstream sends garbage (a bad deploy), but
never because of one shop (docs/operations.md, "The invalid-share guard").

Messages are counted per source: the message's Kafka key, which is its shop for everything
okrflow's intake and `okrflow emit` produce (they key by the authenticated shop), and the
`unattributed` source for messages without a key. The key, not the decoded `shop`, because it
is known for every message, invalid ones included, wherever the batch was decoded (the
counting helper sends back counts, not shops).

Over the window (roughly the last `window` messages, in whole batches):
- a source whose own invalid share passes `max_share`, once it has `min_messages` there, is
  *quarantined*: reported once when it begins and once when it ends, so the worker logs it
  and counts it. Nothing else changes for it: its invalid messages go to the dead letters as
  every invalid message does, its valid ones count.
- the worker stops (InvalidShareExceeded) only when the share passes `max_share` with any
  one shop left out (each leaving at least `min_messages`): garbage from across shops (a bad
  deploy of a shared producer), or from messages without a key, which no shop can be blamed
  for. One shop alone, however much it sends, cannot stop it.
Pure: no I/O, no clock; the sink logs and counts what `check` reports.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

from okrflow.ingest.errors import WorkerFatal

Source = bytes | None  # a message's Kafka key; None: no key (the `unattributed` source)


class InvalidShareExceeded(WorkerFatal):
    """Too many invalid messages recently, beyond one shop's: the worker stops and says why."""


@dataclass(frozen=True)
class QuarantineChange:
    """A source whose invalid share passed `max_share` (`begins`), or no longer does."""

    source: Source
    begins: bool
    invalid: int  # its invalid messages in the window
    messages: int  # its messages in the window


def source_name(source: Source) -> str:
    """A source as a log shows it: the key as text (escaped, cut at 64 characters), or
    `unattributed` for messages without a key. Keys are payload: never a metric label."""
    if source is None:
        return "unattributed (messages without a key)"
    text = source.decode("utf-8", "backslashreplace")
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 64 else text[:61] + "..."


class InvalidShareGuard:
    """Tracks the invalid share per source over roughly the last `window` messages."""

    def __init__(self, max_share: float, window: int, min_messages: int) -> None:
        self.max_share = max_share
        self.window = window
        self.min_messages = min_messages
        # Per batch: its messages, and its messages and invalid messages per source.
        self._batches: deque[tuple[int, Counter[Source], Counter[Source]]] = deque()
        self._count = 0
        self._messages: Counter[Source] = Counter()
        self._invalid: Counter[Source] = Counter()
        self.quarantined: set[Source] = set()

    def check(self, messages: Counter[Source], invalid: Counter[Source]) -> list[QuarantineChange]:
        """Record a batch: its messages per source, and its invalid ones per source (a key
        `b""` is counted as no key). Returns the quarantines that begin or end with it;
        raises InvalidShareExceeded (before the batch is applied) when the share over the
        window, the worst shop left out, passes `max_share`."""
        messages, invalid = _no_empty_key(messages), _no_empty_key(invalid)
        count = messages.total()
        self._batches.append((count, messages, invalid))
        self._count += count
        self._messages.update(messages)
        self._invalid.update(invalid)
        while self._batches and self._count - self._batches[0][0] >= self.window:
            old_count, old_messages, old_invalid = self._batches.popleft()
            self._count -= old_count
            _subtract(self._messages, old_messages)
            _subtract(self._invalid, old_invalid)
        changes = self._quarantines(messages, invalid)
        self._stop_if_beyond_one_shop()
        return changes

    def _over(self, source: Source) -> bool:
        return self._invalid[source] > self.max_share * self._messages[source]

    def _quarantines(
        self, messages: Counter[Source], invalid: Counter[Source]
    ) -> list[QuarantineChange]:
        changes = []
        for source in invalid:
            if (
                source not in self.quarantined
                and self._messages[source] >= self.min_messages
                and self._over(source)
            ):
                self.quarantined.add(source)
                changes.append(self._change(source, begins=True))
        # Only a source with messages in this batch, or gone from the window, can have
        # fallen back under the share.
        for source in sorted(self.quarantined, key=source_name):
            if (source in messages or source not in self._messages) and not self._over(source):
                self.quarantined.discard(source)
                changes.append(self._change(source, begins=False))
        return changes

    def _change(self, source: Source, *, begins: bool) -> QuarantineChange:
        return QuarantineChange(source, begins, self._invalid[source], self._messages[source])

    def _stop_if_beyond_one_shop(self) -> None:
        invalid, count = self._invalid.total(), self._count
        # The share with one shop left out is at most the whole share for the shop whose
        # own share is the highest: at or under `max_share` overall, no shop need be tried.
        if invalid <= self.max_share * count or invalid <= self.max_share * self.min_messages:
            return
        # Stop only if the share passes with any one shop left out (messages without a key
        # are no shop's); the shop whose absence lowers it most is the one named.
        left_invalid, left, without = invalid, count, None
        for source, n in self._invalid.items():
            if source is None:
                continue
            rest_invalid, rest = invalid - n, count - self._messages[source]
            if rest < self.min_messages or rest_invalid <= self.max_share * rest:
                return  # this one shop explains the share
            if rest_invalid * left < left_invalid * rest:
                left_invalid, left, without = rest_invalid, rest, source
        shops = sum(1 for s in self._invalid if s is not None and s != without)
        named = "" if without is None else f" with shop {source_name(without)} left out"
        keyless = " and messages without a key" if None in self._invalid else ""
        raise InvalidShareExceeded(
            f"{left_invalid} of the last {left} messages are invalid{named}, from {shops} "
            f"shop{'s' if shops != 1 else ''}{keyless} (more than {self.max_share:.0%}): a "
            "bad deploy across shops? stopping instead of dead-lettering them all; fix the "
            "producer, or raise OKRFLOW_MAX_INVALID_SHARE"
        )


def _no_empty_key(counts: Counter[Source]) -> Counter[Source]:
    if b"" in counts:
        counts = Counter(counts)
        counts[None] += counts.pop(b"")
    return counts


def _subtract(total: Counter[Source], old: Counter[Source]) -> None:
    for source, n in old.items():
        left = total[source] - n
        if left:
            total[source] = left
        else:
            del total[source]
