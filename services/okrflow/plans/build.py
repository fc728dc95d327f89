"""Domain objects from schema-valid plain data (from `okrs.yaml`, or from the database)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import cast

from okrflow.domain.model import (
    WEEKDAYS,
    Cadence,
    Filter,
    FilterOp,
    KeyResult,
    Maintain,
    Metric,
    Objective,
    Period,
    RatioMetric,
    SimpleMetric,
    Thresholds,
)
from okrflow.jsontypes import JsonValue, SchemaObject

RANGE_OPS: tuple[FilterOp, ...] = ("gt", "gte", "lt", "lte")


def split_path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def build_filter(path: str, spec: JsonValue) -> tuple[Filter, ...]:
    if isinstance(spec, dict) and "in" in spec:
        values = cast(list[JsonValue], spec["in"])  # the schema's `in` is a list
        return (Filter(split_path(path), "in", tuple(values)),)
    if isinstance(spec, dict):
        return tuple(Filter(split_path(path), op, spec[op]) for op in RANGE_OPS if op in spec)
    return (Filter(split_path(path), "eq", spec),)


def build_simple_metric(d: SchemaObject) -> SimpleMetric:
    where = tuple(f for path, spec in d.get("where", {}).items() for f in build_filter(path, spec))
    field = split_path(d["field"]) if "field" in d else None
    return SimpleMetric(d["event"], d["aggregate"], field, where)


def build_metric(d: SchemaObject) -> Metric:
    if "ratio" in d:
        ratio = d["ratio"]
        return RatioMetric(
            build_simple_metric(ratio["numerator"]), build_simple_metric(ratio["denominator"])
        )
    return build_simple_metric(d)


def resolve_target(target: float | str | None, baseline: float) -> float | None:
    """`"+P%"` / `"-P%"` are relative to the baseline; numbers are absolute."""
    if target is None or isinstance(target, int | float):
        return None if target is None else float(target)
    percent = float(target.rstrip("%"))
    # Rounded so that "+15%" of 200 is 230, not 229.99999999999997.
    return round(baseline * (1 + percent / 100), 9)


def build_key_result(d: SchemaObject, measured: float | None = None) -> KeyResult:
    """The key result of its schema-valid data `d`. `measured`: its frozen measured baseline
    (a column of its row, never a field of the file), for a baseline `from` data; None while
    it is not measured yet."""
    spec = d.get("baseline", 0)
    baseline_from = spec["from"] if isinstance(spec, dict) else None
    if baseline_from is None:
        baseline = float(spec)
    else:  # measured from data: 0 until frozen, and no relative target before then
        baseline = float(measured) if measured is not None else 0.0
    waiting = baseline_from is not None and measured is None
    target = d.get("target")
    cadence = None
    if "cadence" in d:
        c = d["cadence"]
        on = c.get("on", WEEKDAYS)
        cadence = Cadence(c["every"], int(c["at_least"]), frozenset(WEEKDAYS.index(w) for w in on))
    maintain = None
    if "maintain" in d:
        maintain = Maintain(below=d["maintain"].get("below"), above=d["maintain"].get("above"))
    return KeyResult(
        key=d["key"],
        title=d["title"] if "title" in d else d["key"],
        metric=build_metric(d["metric"]),
        baseline=baseline,
        target=None if waiting and isinstance(target, str) else resolve_target(target, baseline),
        weight=float(d.get("weight", 1)),
        cadence=cadence,
        maintain=maintain,
        baseline_from=baseline_from,
        baseline_waiting=waiting,
    )


def build_objective(d: SchemaObject, measured: Mapping[str, float] | None = None) -> Objective:
    """The objective of its schema-valid data `d`; `measured`: key result key -> its frozen
    measured baseline (`build_key_result`)."""
    t = d.get("thresholds", {})
    measured = measured or {}
    return Objective(
        key=d["key"],
        title=d["title"],
        owner=d["owner"],
        level=d.get("level", "company"),
        period=Period(
            date.fromisoformat(d["period"]["start"]), date.fromisoformat(d["period"]["end"])
        ),
        key_results=tuple(
            build_key_result(kr, measured.get(kr["key"])) for kr in d.get("key_results", [])
        ),
        thresholds=Thresholds(float(t.get("at_risk", 0.10)), float(t.get("off_track", 0.25))),
        parent=d.get("parent"),
        weight=float(d.get("weight", 1)),
    )
