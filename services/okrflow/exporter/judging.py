"""What a scrape judges: expected pace and status, which move with the clock, for every
definition of a snapshot, grouped so that a scrape computes each pace rule once."""

from __future__ import annotations

from dataclasses import dataclass

from okrflow.domain.model import STATUSES
from okrflow.domain.pace import PaceRule
from okrflow.exporter.exposition import number


class Judged:
    """Definitions judged at scrape time, grouped by their `PaceRule` (by identity: the
    domain caches one rule per definition, so equal definitions share it).

    Within a group, definitions are kept in ascending progress: at any instant their statuses
    then form at most one run per status (`PaceRule.judge_ascending`), and a scrape sends each
    run's pre-encoded status lines with one join, and every expected-ratio line of the group
    with one join (they share one value).
    """

    def __init__(self, expected_name: str) -> None:
        self._expected_name = expected_name
        self._adding: dict[int, tuple[PaceRule, list[tuple[float, str, dict[str, bytes]]]]] = {}
        self._groups: list[Group] = []

    def add(self, rule: PaceRule, progress: float, labels: str, status: dict[str, bytes]) -> None:
        entry = self._adding.get(id(rule))
        if entry is None:
            entry = self._adding[id(rule)] = (rule, [])
        entry[1].append((progress, f"{self._expected_name}{labels}", status))

    def seal(self) -> None:
        """Sort each group by progress once all definitions were added."""
        for rule, members in self._adding.values():
            # NaN progress has no place in an order: such definitions are judged one by one.
            for nan in (m for m in members if m[0] != m[0]):
                self._groups.append(Group(rule, [nan[0]], [nan[1].encode()], {
                    status: [block] for status, block in nan[2].items()
                }))  # fmt: skip
            ordered = sorted((m for m in members if m[0] == m[0]), key=lambda m: m[0])
            if ordered:
                self._groups.append(Group(
                    rule, [m[0] for m in ordered], [m[1].encode() for m in ordered],
                    {status: [m[2][status] for m in ordered] for status in STATUSES},
                ))  # fmt: skip
        self._adding = {}

    def judge(self, now: float) -> tuple[list[bytes], list[bytes]]:
        """The expected-ratio lines and the status lines of every definition at `now`."""
        expected_chunks: list[bytes] = []
        status_chunks: list[bytes] = []
        for group in self._groups:
            expected, runs = group.rule.judge_ascending(group.progresses, now)
            value = f" {number(expected)}\n".encode()
            expected_chunks += (value.join(group.expected_prefixes), value)
            for status, first, after in runs:
                status_chunks.append(b"".join(group.status_lines[status][first:after]))
        return [b"".join(expected_chunks)], [b"".join(status_chunks)]


@dataclass(frozen=True)
class Group:
    rule: PaceRule
    progresses: list[float]  # ascending
    expected_prefixes: list[bytes]  # `<name>{labels}`, in the same order
    status_lines: dict[str, list[bytes]]  # status -> each definition's lines for that status
