"""What the schema of `okrs.yaml` cannot say, checked on schema-valid data: a known time
zone; unique keys; periods in order; parents that exist, without cycles; a metric's field;
cadence slots in the period; a target apart from its baseline; finite numbers; and the KPIs'
(`plans.kpis`). Each problem is made by the caller's `problem(path, message)`."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from okrflow.domain.model import NEEDS_FIELD
from okrflow.domain.periods import cadence_slots
from okrflow.jsontypes import JsonValue, SchemaObject
from okrflow.plans.build import build_key_result, build_objective
from okrflow.plans.kpis import kpi_problems
from okrflow.plans.yamlsource import Path

P = TypeVar("P")


def semantic_problems(data: SchemaObject, problem: Callable[[Path, str], P]) -> list[P]:
    """What is wrong with schema-valid plan data that its schema cannot say, each problem
    made by `problem` (path, message)."""
    problems: list[P] = []
    try:
        ZoneInfo(data["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(problem(("timezone",), f"unknown time zone {data['timezone']!r}"))
    objectives = data["objectives"]
    first_index: dict[str, int] = {}
    for i, o in enumerate(objectives):
        if o["key"] in first_index:
            problems.append(
                problem(
                    ("objectives", i, "key"),
                    f"duplicate objective key {o['key']!r} (first at objectives[{first_index[o['key']]}])",
                )
            )
        else:
            first_index[o["key"]] = i
    has_children = {o.get("parent") for o in objectives}
    for i, o in enumerate(objectives):
        at: Path = ("objectives", i)
        start, end = o["period"]["start"], o["period"]["end"]
        try:
            if date.fromisoformat(start) > date.fromisoformat(end):
                problems.append(problem((*at, "period"), f"start {start} is after end {end}"))
        except ValueError as exc:
            problems.append(problem((*at, "period"), f"not a date: {exc}"))
            continue
        parent = o.get("parent")
        if parent is not None and parent not in first_index:
            problems.append(problem((*at, "parent"), f"no objective has key {parent!r}"))
        if not o.get("key_results") and o["key"] not in has_children:
            problems.append(problem(at, "has no key results and no child objectives"))
        seen: dict[str, int] = {}
        for j, kr in enumerate(o.get("key_results", [])):
            kr_at: Path = (*at, "key_results", j)
            if kr["key"] in seen:
                problems.append(
                    problem(
                        (*kr_at, "key"),
                        f"duplicate key result key {kr['key']!r} in objective {o['key']!r}",
                    )
                )
            seen.setdefault(kr["key"], j)
            problems.extend(_key_result_problems(kr, kr_at, o, data["timezone"], problem))
    problems.extend(_cycle_problems(objectives, first_index, problem))
    problems.extend(kpi_problems(data, problem))
    problems.extend(problem(at, "not a finite number") for at in _non_finite(data, ()))
    return problems


def _non_finite(value: JsonValue, at: Path) -> list[Path]:
    """Where the data holds YAML's .inf or .nan (JSON Schema's `number` accepts them): a
    bound of infinity is never met, and NaN compares false with everything."""
    if isinstance(value, float) and not math.isfinite(value):
        return [at]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, (*at, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, (*at, i))]
    return []


def _key_result_problems(
    kr: SchemaObject, at: Path, objective: SchemaObject, tz: str,
    problem: Callable[[Path, str], P],
) -> list[P]:  # fmt: skip
    problems: list[P] = []
    kinds = [k for k in ("target", "cadence", "maintain") if k in kr]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        problems.append(
            problem(at, f"needs exactly one of target, cadence, maintain (found: {found})")
        )
    metric = kr["metric"]
    parts = (
        [
            ("numerator", metric["ratio"]["numerator"]),
            ("denominator", metric["ratio"]["denominator"]),
        ]
        if "ratio" in metric
        else [(None, metric)]
    )
    for name, m in parts:
        m_at: Path = (*at, "metric", "ratio", name) if name else (*at, "metric")
        if m["aggregate"] in NEEDS_FIELD and "field" not in m:
            problems.append(
                problem(m_at, f"aggregate {m['aggregate']} needs a field (e.g. data.total)")
            )
        if m["aggregate"] == "count" and "field" in m:
            problems.append(problem((*m_at, "field"), "aggregate count takes no field"))
    measured = isinstance(kr.get("baseline"), dict)  # `baseline: {from: ...}`
    if measured and "cadence" in kr:
        problems.append(
            problem((*at, "baseline"), "a cadence key result has no baseline to measure")
        )
    if "cadence" in kr:
        cadence = kr["cadence"]
        if "ratio" in metric or metric["aggregate"] != "count":
            problems.append(
                problem((*at, "metric"), "a cadence key result counts events: use aggregate count")
            )
        if "on" in cadence and cadence["every"] != "day":
            problems.append(problem((*at, "cadence", "on"), "weekdays only apply to every: day"))
        if not problems:
            built = build_key_result(kr)
            period = build_objective({**objective, "key_results": []}).period
            assert built.cadence is not None
            try:
                if not cadence_slots(period, built.cadence, tz):
                    problems.append(
                        problem((*at, "cadence"), "the period holds no slot of this cadence")
                    )
            except (ZoneInfoNotFoundError, ValueError):
                pass  # reported on `timezone`
    if "target" in kr and not problems and not measured:
        built = build_key_result(kr)
        if built.target == built.baseline:
            problems.append(
                problem(
                    (*at, "target"),
                    f"equals the baseline ({built.baseline:g}): progress would be undefined",
                )
            )
    return problems


def _cycle_problems(
    objectives: list[SchemaObject], index: dict[str, int], problem: Callable[[Path, str], P]
) -> list[P]:
    parent_of = {o["key"]: o.get("parent") for o in objectives}
    problems: list[P] = []
    reported: set[str] = set()
    for o in objectives:
        chain = [o["key"]]
        current = parent_of.get(o["key"])
        while current is not None and current in parent_of:
            if current in chain:
                cycle = [*chain[chain.index(current) :], current]
                if not reported & set(cycle):
                    problems.append(
                        problem(
                            ("objectives", index[o["key"]], "parent"),
                            "parent cycle: " + " -> ".join(cycle),
                        )
                    )
                reported.update(cycle)
                break
            chain.append(current)
            current = parent_of.get(current)
    return problems
