"""Who is in a consumer group and which partitions of a topic each member holds: to say why a
worker counts nothing (it holds no partitions, because other members hold them all)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

from okrflow.kafkaclient import admin_client, start_client
from okrflow.settings import Settings


@dataclass(frozen=True)
class GroupMember:
    client_id: str
    host: str
    partitions: tuple[int, ...]  # of the topic asked about


@dataclass(frozen=True)
class GroupView:
    group: str
    state: str  # Kafka's: Stable, PreparingRebalance, CompletingRebalance, Empty, Dead
    members: tuple[GroupMember, ...]

    def holders(self) -> str:
        """The members and their partitions, in one phrase."""
        if not self.members:
            return "no members"
        parts = []
        for m in self.members:
            held = ",".join(map(str, m.partitions)) if m.partitions else "none"
            parts.append(f"{m.client_id} from {m.host.lstrip('/')} (partitions {held})")
        return f"{len(self.members)} member(s): " + "; ".join(parts)


def member_partitions(assignment: bytes, topic: str) -> tuple[int, ...]:
    """The partitions of `topic` in a member's assignment as DescribeGroups returns it."""
    if not assignment:
        return ()
    decoded = ConsumerProtocolMemberAssignment.decode(assignment)
    return tuple(sorted(p for t, ps in decoded.assignment if t == topic for p in ps))


async def _describe(settings: Settings, group: str, topic: str) -> GroupView:
    client = admin_client(settings)
    await start_client(client, settings)
    try:
        responses = await client.describe_consumer_groups([group])
    finally:
        await client.close()
    for response in responses:
        for described in response.groups:
            _error, group_id, state, _ptype, _protocol, members = described[:6]
            if group_id == group:
                return GroupView(
                    group, state,
                    tuple(
                        GroupMember(m[1], m[2], member_partitions(m[-1], topic)) for m in members
                    ),
                )  # fmt: skip
    return GroupView(group, "Dead", ())


def describe_group(
    settings: Settings, group: str, topic: str, timeout: float = 10.0
) -> GroupView | str:
    """The group's members and what they hold of `topic`, or why it could not be read."""
    try:
        return asyncio.run(asyncio.wait_for(_describe(settings, group, topic), timeout))
    except (KafkaError, OSError, TimeoutError) as exc:
        return f"could not describe group {group}: {type(exc).__name__}: {exc}"
