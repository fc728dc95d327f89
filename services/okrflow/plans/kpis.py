"""The `kpis:` section of `okrs.yaml`: KPIs from schema-valid plain data, and the checks the
schema cannot express (unique keys, window range, a metric's field) (docs/plan-files.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from okrflow.domain.model import NEEDS_FIELD, Kpi, Maintain
from okrflow.jsontypes import SchemaObject
from okrflow.plans.build import build_metric
from okrflow.plans.yamlsource import Path

MAX_KPIS = 50  # per file
MAX_WINDOW_DAYS = 366

P = TypeVar("P")


def window_days(window: str) -> int:
    """`"7d"` -> 7 (the schema guarantees digits and a trailing `d`)."""
    return int(window.removesuffix("d"))


def build_kpi(d: SchemaObject) -> Kpi:
    healthy = None
    if "healthy" in d:
        healthy = Maintain(below=d["healthy"].get("below"), above=d["healthy"].get("above"))
    return Kpi(
        key=d["key"],
        title=d["title"] if "title" in d else d["key"],
        metric=build_metric(d["metric"]),
        window_days=window_days(d["window"]),
        healthy=healthy,
    )


def build_kpis(data: SchemaObject) -> tuple[Kpi, ...]:
    """The plan's KPIs, in file order (none without a `kpis:` section)."""
    return tuple(build_kpi(k) for k in data.get("kpis", []))


def simple_metrics(metric: SchemaObject, at: Path) -> list[tuple[SchemaObject, Path]]:
    """A metric's simple metrics with their paths: itself, or a ratio's two parts."""
    if "ratio" in metric:
        return [(metric["ratio"][p], (*at, "ratio", p)) for p in ("numerator", "denominator")]
    return [(metric, at)]


def kpi_problems(data: SchemaObject, problem: Callable[[Path, str], P]) -> list[P]:
    """What is wrong with the `kpis:` of schema-valid plan data, each made by `problem`."""
    problems: list[P] = []
    first: dict[str, int] = {}
    for i, kpi in enumerate(data.get("kpis", [])):
        at: Path = ("kpis", i)
        if kpi["key"] in first:
            problems.append(
                problem(
                    (*at, "key"),
                    f"duplicate KPI key {kpi['key']!r} (first at kpis[{first[kpi['key']]}])",
                )
            )
        first.setdefault(kpi["key"], i)
        days = window_days(kpi["window"])
        if not 1 <= days <= MAX_WINDOW_DAYS:
            problems.append(
                problem((*at, "window"), f"{days} days: a window holds 1d to {MAX_WINDOW_DAYS}d")
            )
        for m, m_at in simple_metrics(kpi["metric"], (*at, "metric")):
            if m["aggregate"] in NEEDS_FIELD and "field" not in m:
                problems.append(
                    problem(m_at, f"aggregate {m['aggregate']} needs a field (e.g. data.total)")
                )
            if m["aggregate"] == "count" and "field" in m:
                problems.append(problem((*m_at, "field"), "aggregate count takes no field"))
    return problems
