"""JSON values as types: what `json.dumps` takes and `json.loads` gives back.

The reports' `to_json()` return a `JsonObject`; the intake and the pages send it as it is.
A `SchemaObject` is a JSON object already checked against its JSON Schema (a plan's data,
a stored definition), read by the shape the schema guarantees.
"""

from __future__ import annotations

from typing import Any, TypeAlias

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"
# Any: valid against its JSON Schema (schemas/okr-definitions.schema.json for a plan), so each
# read (`d["metric"]["ratio"]`) has the type the schema gives it; spelling that as types would
# write the schema a second time (narrowed at every read) for no check the validator misses.
SchemaObject: TypeAlias = "dict[str, Any]"
