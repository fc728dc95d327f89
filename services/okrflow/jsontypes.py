"""JSON values as types: what `json.dumps` takes and `json.loads` gives back.

The reports' `to_json()` return a `JsonObject`; the intake and the pages send it as it is.
"""

from __future__ import annotations

from typing import TypeAlias

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"
