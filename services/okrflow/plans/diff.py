"""What `okrflow apply` would change: the plan in the file against the plan in force. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from okrflow.jsontypes import JsonObject, JsonValue, SchemaObject

if TYPE_CHECKING:  # a row type only: the database stack loads once the files are good
    from okrflow.store.plans import StoredPlan

Action = Literal["added", "changed", "retired"]


MAX_SHOWN = 40  # characters of one value in a change's detail; longer values are shortened
UNSET = "(unset)"


@dataclass(frozen=True)
class FieldChange:
    """One changed field: its dotted path in the definition, its old and new values."""

    path: str  # "target", "metric.where.data.platform"
    old: JsonValue | _Absent  # _ABSENT when the field was not set
    new: JsonValue | _Absent

    def __str__(self) -> str:
        return f"{self.path}: {show_value(self.old)} -> {show_value(self.new)}"


class _Absent:
    def __repr__(self) -> str:
        return UNSET


_ABSENT = _Absent()


@dataclass(frozen=True)
class Change:
    action: Action
    what: str  # "objective more-clients", "key result more-clients/new-clients", "time zone"
    detail: str = ""
    fields: tuple[FieldChange, ...] = ()

    def __str__(self) -> str:
        return f"{self.action:8} {self.what}" + (f" ({self.detail})" if self.detail else "")


def show_value(value: JsonValue | _Absent) -> str:
    """A value as a plan shows it: text as is, anything else as compact JSON, at most
    MAX_SHOWN characters (the middle of a longer value is cut, its end stays visible)."""
    if value is _ABSENT:
        return UNSET
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    if len(text) <= MAX_SHOWN:
        return text
    head = (MAX_SHOWN - 3) * 2 // 3
    return text[:head] + "..." + text[len(text) - (MAX_SHOWN - 3 - head) :]


def field_changes(old: JsonObject, new: JsonObject, prefix: str = "") -> list[FieldChange]:
    """Every leaf that differs between two definitions, by dotted path, sorted. Mappings are
    compared key by key; lists and scalars whole. A field set on one side only is a change
    from or to UNSET."""
    changes: list[FieldChange] = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key, _ABSENT), new.get(key, _ABSENT)
        path = f"{prefix}{key}"
        if isinstance(before, dict) and isinstance(after, dict):
            changes.extend(field_changes(before, after, path + "."))
        elif not _same(before, after):
            changes.append(FieldChange(path, before, after))
    return changes


def _same(a: JsonValue | _Absent, b: JsonValue | _Absent) -> bool:
    # 1 == True and 1 == 1.0 in Python; in a plan `true` and `1` differ, `1` and `1.0` do not.
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _changed(action: Action, what: str, fields: list[FieldChange], note: str = "") -> Change:
    detail = ", ".join(str(f) for f in fields)
    if note:
        detail = f"{detail}; {note}" if detail else note
    return Change(action, what, detail, tuple(fields))


def objective_definition(objective: SchemaObject) -> SchemaObject:
    """An objective's stored definition: everything but its key results."""
    return {k: v for k, v in objective.items() if k != "key_results"}


def counting_fingerprint(key_result: SchemaObject, timezone: str) -> str:
    """What decides which events a key result counts: its metric and the shop's time zone.

    Counters survive any change that keeps this (title, target, weight, a numeric baseline,
    period...). A baseline measured from data (`baseline: {from: ...}`) is part of it.
    """
    counting: SchemaObject = {"metric": key_result["metric"], "timezone": timezone}
    baseline = key_result.get("baseline")
    if isinstance(baseline, dict):  # measured from data: its window is counted too
        counting["baseline_from"] = baseline["from"]
    return json.dumps(counting, sort_keys=True)


def diff_plan(source: SchemaObject, stored: StoredPlan) -> list[Change]:
    """Changes from `stored` to the schema-valid plan data `source`, in file order."""
    tz = source["timezone"]
    changes: list[Change] = []
    if stored.timezone is not None and stored.timezone != tz:
        changes.append(
            _changed("changed", "time zone", [FieldChange("timezone", stored.timezone, tz)])
        )
    wanted_krs: set[tuple[str, str]] = set()
    for objective in source["objectives"]:
        key = objective["key"]
        definition = objective_definition(objective)
        old = stored.objectives.get(key)
        if old is None:
            changes.append(Change("added", f"objective {key}"))
        elif old != definition:
            changes.append(_changed("changed", f"objective {key}", field_changes(old, definition)))
        for kr in objective.get("key_results", []):
            wanted_krs.add((key, kr["key"]))
            current = stored.key_results.get((key, kr["key"]))
            name = f"key result {key}/{kr['key']}"
            if current is None:
                changes.append(Change("added", name))
            elif current.counting != counting_fingerprint(kr, tz):
                fields = field_changes(current.definition, kr)
                what = (
                    "metric" if any(f.path.startswith("metric.") for f in fields)
                    else "baseline" if any(f.path.startswith("baseline") for f in fields)
                    else "time zone"
                )  # fmt: skip
                note = f"{what} changed: counters restart at zero"
                changes.append(_changed("changed", name, fields, note))
            elif current.definition != kr:
                changes.append(_changed("changed", name, field_changes(current.definition, kr)))
    wanted_objectives = {o["key"] for o in source["objectives"]}
    for key in stored.objectives:
        if key not in wanted_objectives:
            changes.append(Change("retired", f"objective {key}"))
    for pair in stored.key_results:
        if pair not in wanted_krs:
            changes.append(Change("retired", f"key result {pair[0]}/{pair[1]}"))
    return changes + _kpi_changes(source, stored)


def kpi_counting_fingerprint(kpi: SchemaObject, timezone: str) -> str:
    """What decides which events a KPI counts: its metric and the shop's time zone. Its
    `window` and `healthy` band are read at query time, so changing them keeps the counters."""
    return json.dumps({"metric": kpi["metric"], "timezone": timezone}, sort_keys=True)


def _kpi_changes(source: SchemaObject, stored: StoredPlan) -> list[Change]:
    tz = source["timezone"]
    changes: list[Change] = []
    wanted = set()
    for kpi in source.get("kpis", []):
        wanted.add(kpi["key"])
        current = stored.kpis.get(kpi["key"])
        name = f"kpi {kpi['key']}"
        if current is None:
            changes.append(Change("added", name))
        elif current.counting != kpi_counting_fingerprint(kpi, tz):
            fields = field_changes(current.definition, kpi)
            what = "metric" if any(f.path.startswith("metric.") for f in fields) else "time zone"
            changes.append(
                _changed("changed", name, fields, f"{what} changed: counters restart at zero")
            )
        elif current.definition != kpi:
            changes.append(_changed("changed", name, field_changes(current.definition, kpi)))
    changes.extend(Change("retired", f"kpi {key}") for key in stored.kpis if key not in wanted)
    return changes
