"""YAML to plain data, remembering the line of every path, for located error messages.

The text is read with ruamel.yaml's YAML 1.2 parser, event by event, and built here without
its composer or constructors, so that:

- scalars follow YAML 1.2: only `true`/`false` are booleans (`on:` is a key, not `True`);
  dates (and any timestamp) stay text; numbers are ints or floats;
- a duplicate key in a mapping is an error (located at the second one), not "the last wins";
- anchors (`&name`) and aliases (`*name`) are refused where they appear: a plan never needs
  them, and refusing them makes "billion laughs" (aliases expanding exponentially) and
  recursive aliases impossible, with no expansion count to tune;
- only YAML's standard tags are accepted (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`,
  `!!map`, `!!seq`); any other (`!foo`, `!!python/name:...`) is an error;
- nesting is capped at `MAX_DEPTH` levels (nothing downstream recurses without bound) and a
  document at `MAX_VALUES` values (scalars, lists and mappings);
- a caller's `check(path, value)` sees every value as it is read, so a limit (on the number
  of objectives, say) stops reading at the first value past it.

Building is one pass over the parser's events that stops at the first problem, so memory and
time stay proportional to the text read so far.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    DocumentStartEvent,
    Event,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver

from okrflow.jsontypes import JsonValue

Path = tuple[str | int, ...]

MAX_DEPTH = 32  # nested mappings and lists; a plan needs about 11
MAX_VALUES = 50_000  # in one document: a 1 MiB plan has about 20,000 (a key result 15 to 25)

_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_CORE + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = _CORE + "map", _CORE + "seq"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL}
_NO_ANCHORS = "anchors and aliases are not allowed in a plan file (write the value out)"

# Always YAML 1.2, whatever a `%YAML` directive in the file says.
_RESOLVER = VersionedResolver(version=(1, 2))


class YamlSyntaxError(ValueError):
    """The text is not a plan-shaped YAML document. `path` is () when no path applies."""

    def __init__(self, line: int, message: str, path: Path = ()) -> None:
        super().__init__(message)
        self.line = line
        self.path = path


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    path: Path
    key: str | None = None  # in a mapping: the key whose value comes next
    key_lines: dict[str, int] = field(default_factory=dict)


Check = Callable[[Path, JsonValue], str | None]
"""Called with each value as it is read (a collection still empty); a message refuses it."""


def load_with_lines(text: str, check: Check | None = None) -> tuple[JsonValue, dict[Path, int]]:
    """Parse one YAML document; returns (data, {path: 1-based line}).

    Raises YamlSyntaxError, located, for bad syntax and for everything refused above."""
    events = YAML(typ="safe", pure=True).parse(text)
    try:
        return _build(events, check)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or str(exc).splitlines()[0]
        raise YamlSyntaxError(mark.line + 1 if mark else 1, str(message)) from exc
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise YamlSyntaxError(line, str(exc).splitlines()[0]) from exc
    except YAMLError as exc:  # no mark: report it at the top
        raise YamlSyntaxError(1, str(exc).splitlines()[0] or type(exc).__name__) from exc
    finally:
        events.close()


def _build(events: Any, check: Check | None) -> tuple[Any, dict[Path, int]]:
    lines: dict[Path, int] = {}
    root: Any = None
    stack: list[_Frame] = []
    documents = 0
    event: Event
    for event in events:
        line = event.start_mark.line + 1
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise YamlSyntaxError(
                    line, "expected a single document in the stream, but found another document"
                )
            continue
        if isinstance(event, CollectionEndEvent):
            stack.pop()
            continue
        if not isinstance(event, NodeEvent):
            continue  # stream start and end, document end
        parent = stack[-1] if stack else None
        if parent is not None and isinstance(parent.container, dict) and parent.key is None:
            parent.key = _key(event, parent, line)
            continue
        if parent is None:
            path: Path = ()
        elif isinstance(parent.container, dict):
            assert parent.key is not None
            path = (*parent.path, parent.key)
        else:
            path = (*parent.path, len(parent.container))
        if isinstance(event, AliasEvent):
            raise YamlSyntaxError(line, f"alias *{event.anchor}: {_NO_ANCHORS}", path)
        if event.anchor is not None:
            raise YamlSyntaxError(line, f"anchor &{event.anchor}: {_NO_ANCHORS}", path)
        lines[path] = line
        value: Any
        if isinstance(event, ScalarEvent):
            value = _scalar(event, path, line)
        elif isinstance(event, MappingStartEvent):
            _check_tag(event.tag, _MAP, path, line)
            value = {}
        else:
            assert isinstance(event, SequenceStartEvent)
            _check_tag(event.tag, _SEQ, path, line)
            value = []
        if len(lines) > MAX_VALUES:
            raise YamlSyntaxError(line, f"more than {MAX_VALUES} values: not a plan", path)
        refused = check(path, value) if check else None
        if refused is not None:
            raise YamlSyntaxError(line, refused, path)
        if parent is None:
            root = value
        elif isinstance(parent.container, dict):
            assert parent.key is not None
            parent.container[parent.key] = value
            parent.key = None
        else:
            parent.container.append(value)
        if isinstance(value, dict | list):
            if len(stack) >= MAX_DEPTH:
                raise YamlSyntaxError(
                    line, f"nested more than {MAX_DEPTH} levels deep: not a plan", path
                )
            stack.append(_Frame(value, path))
    return root, lines


def _key(event: NodeEvent, mapping: _Frame, line: int) -> str:
    """The text of a mapping key; keys are taken as written (`1:` is the key "1")."""
    if isinstance(event, AliasEvent):
        raise YamlSyntaxError(line, f"alias *{event.anchor}: {_NO_ANCHORS}", mapping.path)
    if not isinstance(event, ScalarEvent):
        kind = "a mapping" if isinstance(event, MappingStartEvent) else "a list"
        raise YamlSyntaxError(line, f"a key must be text, not {kind}", mapping.path)
    key = str(event.value)
    if event.anchor is not None:
        raise YamlSyntaxError(line, f"anchor &{event.anchor}: {_NO_ANCHORS}", (*mapping.path, key))
    if event.tag not in (None, "!", _STR):
        known = event.tag in (_MAP, _SEQ, *_SCALAR_TAGS)
        message = f"a key is text: tag {_show(event.tag)}" if known else _unknown_tag(event.tag)
        raise YamlSyntaxError(line, message, mapping.path)
    first = mapping.key_lines.get(key)
    if first is not None:
        raise YamlSyntaxError(
            line, f"duplicate key {key!r} (first at line {first})", (*mapping.path, key)
        )
    mapping.key_lines[key] = line
    return key


def _check_tag(tag: str | None, expected: str, path: Path, line: int) -> None:
    if tag in (None, "!", expected):
        return
    if tag in (_MAP, _SEQ, *_SCALAR_TAGS):
        raise YamlSyntaxError(line, f"tag {_show(tag)} does not fit this value", path)
    raise YamlSyntaxError(line, _unknown_tag(tag), path)


def _scalar(event: ScalarEvent, path: Path, line: int) -> Any:
    value = str(event.value)
    tag = event.tag
    if tag in (None, "!"):
        implicit = event.implicit if tag is None else (False, True)  # `! 12` is text
        resolved = str(_RESOLVER.resolve(ScalarNode, value, implicit))
        try:
            return _convert(resolved, value)
        except ValueError:  # matched a number pattern yet is none (e.g. `_`): text
            return value
    if tag == _STR:
        return value
    if tag not in _SCALAR_TAGS:
        if tag in (_MAP, _SEQ):
            raise YamlSyntaxError(line, f"tag {_show(tag)} does not fit this value", path)
        raise YamlSyntaxError(line, _unknown_tag(tag), path)
    resolved = str(_RESOLVER.resolve(ScalarNode, value, (True, False)))
    if resolved == tag or (tag == _FLOAT and resolved == _INT):
        try:
            return _convert(tag, value)
        except ValueError:
            pass
    raise YamlSyntaxError(line, f"{value!r} is not a valid {_show(tag)}", path)


def _convert(tag: str, value: str) -> Any:
    """A YAML 1.2 scalar of a resolved tag as Python; timestamps (dates) stay text.

    Raises ValueError for a number the resolver's pattern lets through but Python cannot read."""
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return value.lower() == "true"
    if tag == _INT:
        digits = value.replace("_", "")
        sign = -1 if digits.startswith("-") else 1
        digits = digits.lstrip("+-")
        for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
            if digits.startswith(prefix):
                return sign * int(digits[2:], base)
        return sign * int(digits)
    if tag == _FLOAT:
        number = value.replace("_", "").lower()
        if number.lstrip("+-") == ".inf":
            return -math.inf if number.startswith("-") else math.inf
        if number == ".nan":
            return math.nan
        return float(number)
    return value


def _show(tag: str | None) -> str:
    tag = tag or ""
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


def _unknown_tag(tag: str | None) -> str:
    return (
        f"unknown tag {_show(tag)}: only the standard tags "
        "!!str, !!int, !!float, !!bool, !!null, !!map and !!seq are allowed"
    )


def line_of(lines: dict[Path, int], path: Path) -> int:
    """The line of `path`, or of its nearest ancestor that has one."""
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)


def format_path(path: Path) -> str:
    """('objectives', 0, 'key') -> 'objectives[0].key'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
