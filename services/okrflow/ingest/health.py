"""The worker's /healthz and /readyz: alive; ready when the broker and the database answer and
the group has given this worker its assignment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mode.types.signals import BaseSignalT
from sqlalchemy import Engine

from okrflow.ops.http import Reply, json_reply
from okrflow.ops.probes import KafkaProbe, database_answers
from okrflow.settings import Settings

# Any: faust's partition signals call their receivers untyped (mode's SignalT: a sender,
# positional arguments, the signal, keywords), and receivers must accept them as they come.
Untyped = Any


class WorkerHealth:
    def __init__(self, settings: Settings, reader: Engine) -> None:
        self._reader = reader
        self._topic = settings.events_topic
        self._kafka = KafkaProbe(settings)
        # Partitions of the events topic assigned to this worker; None until the group's first
        # assignment (an empty set is an assignment: more workers than partitions).
        self.assignment: frozenset[int] | None = None
        # Why the worker is stopping on purpose (set from the worker's WorkerFatal), if it is.
        self.stopping_because: Callable[[], str | None] = lambda: None

    async def on_assigned(
        self,
        sender: Untyped,
        /,
        *args: Untyped,
        signal: BaseSignalT[Untyped],
        **kwargs: Untyped,
    ) -> None:
        """faust's on_partitions_assigned: `args[0]` is the set of assigned TPs."""
        topic = self._topic
        self.assignment = frozenset(tp.partition for tp in args[0] if tp.topic == topic)

    async def on_revoked(
        self,
        sender: Untyped,
        /,
        *args: Untyped,
        signal: BaseSignalT[Untyped],
        **kwargs: Untyped,
    ) -> None:
        self.assignment = None  # until the rebalance assigns again

    def healthz(self) -> Reply:
        fatal = self.stopping_because()
        if fatal is not None:
            return json_reply(503, {"status": "stopping", "reason": fatal})
        return json_reply(200, {"status": "ok"})

    def readyz(self) -> Reply:
        problems = {}
        fatal = self.stopping_because()
        if fatal is not None:
            problems["worker"] = fatal
        kafka = self._kafka.problem()
        if kafka is not None:
            problems["kafka"] = kafka
        database = database_answers(self._reader)
        if database is not None:
            problems["database"] = database
        if self.assignment is None:
            problems["consumer"] = "not assigned yet (joining the consumer group)"
        if problems:
            return json_reply(503, {"status": "not ready", "problems": problems})
        return json_reply(200, {"status": "ready", "partitions": sorted(self.assignment or ())})
