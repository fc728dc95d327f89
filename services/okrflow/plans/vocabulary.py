"""Warnings about names a plan uses that no event will carry: an event type that is neither
built in nor seen, a `where` or `field` path that the type's data does not define. Pure.

A typo there is valid YAML and a valid plan, yet the key result never moves; these warnings
say so, with the closest known name (difflib). They never refuse a plan: shops may send their
own event types and add their own fields to the built-in ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator

import msgspec

from okrflow.events import CloudEvent
from okrflow.events.types import BUILT_IN
from okrflow.jsontypes import SchemaObject
from okrflow.plans.parse import ParsedPlan, Problem
from okrflow.plans.yamlsource import Path, format_path

# Envelope attributes a path may name (okrflow.counting.matching.path_value reads them).
ENVELOPE = frozenset(f.name for f in msgspec.structs.fields(CloudEvent)) - {"data"}


def built_in_fields(event_type: str) -> frozenset[str] | None:
    """The `data` fields a built-in type defines (mirrors schemas/events/*.schema.json);
    None for a type that is not built in."""
    struct = BUILT_IN.get(event_type)
    if struct is None:
        return None
    return frozenset(f.name for f in msgspec.structs.fields(struct))


def _closest(word: str, choices: Collection[str]) -> str:
    """ "; did you mean 'x'?" for the closest of `choices` (difflib's ratio >= 0.6), or ""."""
    match = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _simple_metrics(metric: SchemaObject, at: Path) -> Iterator[tuple[SchemaObject, Path]]:
    if "ratio" in metric:
        for part in ("numerator", "denominator"):
            yield metric["ratio"][part], (*at, "ratio", part)
    else:
        yield metric, at


def plan_warnings(parsed: ParsedPlan, seen_types: Collection[str] | None = None) -> list[Problem]:
    """Warnings for one schema-valid plan, located (FILE:LINE: path: warning: ...).

    `seen_types`: event types the database has counted for the plan's shop; None offline."""
    database = seen_types is not None
    known_types = set(BUILT_IN) | set(seen_types or ())
    warnings: list[Problem] = []

    def warn(path: Path, message: str) -> None:
        warnings.append(
            Problem(parsed.filename, parsed.line(path), format_path(path), f"warning: {message}")
        )

    measures: list[tuple[SchemaObject, Path, str]] = [
        (
            kr["metric"],
            ("objectives", i, "key_results", j, "metric"),
            "key result stays at its baseline",
        )
        for i, objective in enumerate(parsed.source["objectives"])
        for j, kr in enumerate(objective.get("key_results", []))
    ]
    measures += [
        (kpi["metric"], ("kpis", i, "metric"), "KPI counts nothing")
        for i, kpi in enumerate(parsed.source.get("kpis", []))
    ]
    for measure_metric, at, until in measures:
        for metric, m_at in _simple_metrics(measure_metric, at):
            event_type = metric["event"]
            if event_type not in known_types:
                seen = " nor seen for this shop" if database else " (checked offline)"
                warn(
                    (*m_at, "event"),
                    f"event type {event_type!r} is not built in{seen}; until such events "
                    f"arrive this {until}" + _closest(event_type, known_types),
                )
            paths = [((*m_at, "where", p), p) for p in metric.get("where", {})]
            if "field" in metric:
                paths.append(((*m_at, "field"), metric["field"]))
            for where, path in paths:
                problem = _path_problem(event_type, path)
                if problem:
                    warn(where, problem)
    return warnings


def _path_problem(event_type: str, path: str) -> str | None:
    parts = path.split(".")
    if parts[0] != "data":
        if len(parts) == 1 and parts[0] in ENVELOPE:
            return None
        hint = _closest(path, ENVELOPE) or f" (attributes: {', '.join(sorted(ENVELOPE))})"
        return f"{path!r} is neither a data. path nor an event attribute{hint}"
    fields = built_in_fields(event_type)
    if fields is None or len(parts) < 2 or parts[1] in fields:
        return None
    names = [f"data.{f}" for f in sorted(fields)]
    hint = _closest(path, names) or f" (it defines {', '.join(names)})"
    return f"{path!r} is not defined for {event_type}: only events that add it match{hint}"
