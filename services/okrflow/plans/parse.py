"""`okrs.yaml` text -> a validated `Plan`, or every problem as `FILE:LINE: path: message`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from os import PathLike
from typing import cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from okrflow.domain.model import Plan
from okrflow.jsontypes import JsonValue, SchemaObject
from okrflow.plans.build import build_objective
from okrflow.plans.checks import semantic_problems
from okrflow.plans.kpis import MAX_KPIS, MAX_WINDOW_DAYS, build_kpis
from okrflow.plans.yamlsource import (
    Check,
    Path,
    YamlSyntaxError,
    format_path,
    line_of,
    load_with_lines,
)

# Limits of one plan file (docs/plan-files.md; yamlsource adds nesting and value
# counts). Each is checked as the file is read, so a file over one is refused as soon as the
# limit is crossed. Titles become metric labels.
MAX_FILE_BYTES = 1024 * 1024  # 1 MiB
MAX_OBJECTIVES = 200  # per file
MAX_KEY_RESULTS = 25  # per objective
MAX_TITLE_CHARS = 200  # objective and key result titles


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


class PlanError(ValueError):
    """The file is not a valid plan; `problems` lists every problem found, in line order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class ParsedPlan:
    plan: Plan
    source: SchemaObject  # the schema-valid data the plan was built from
    filename: str = ""
    lines: dict[Path, int] = field(default_factory=dict)  # path in `source` -> 1-based line

    def line(self, path: Path) -> int:
        """The line of `path` in the file (or of its nearest ancestor)."""
        return line_of(self.lines, path)


@cache
def _validator() -> Draft202012Validator:
    text = resources.files("okrflow.plans").joinpath("okr-definitions.schema.json").read_text()
    return Draft202012Validator(json.loads(text))


def read_plan_file(path: str | PathLike[str]) -> str:
    """The text of a plan file: at most MAX_FILE_BYTES of UTF-8. Raises PlanError if not."""
    name = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # never more, whatever the file holds
    except OSError as exc:
        raise PlanError([Problem(name, 1, "", f"cannot read: {exc.strerror}")]) from exc
    return decode_plan(data, name)


def decode_plan(data: bytes, filename: str) -> str:
    """UTF-8 bytes of a plan file as text; raises PlanError, located, if too big or not UTF-8."""
    if len(data) > MAX_FILE_BYTES:
        raise PlanError([_too_big(filename)])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - line_start + 1
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column}"
        raise PlanError([Problem(filename, line, "", message)]) from exc


def _too_big(filename: str) -> Problem:
    return Problem(
        filename, 1, "", f"larger than {MAX_FILE_BYTES / 2**20:g} MiB, the limit of a plan file"
    )


def parse_plan(text: str, filename: str) -> ParsedPlan:
    """Parse and check one plan file. Raises PlanError with located problems."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise PlanError([_too_big(filename)])
    try:
        loaded, lines = load_with_lines(text, _limits())
    except YamlSyntaxError as exc:
        if exc.path:
            problem_at = Problem(filename, exc.line, format_path(exc.path), str(exc))
        else:
            problem_at = Problem(filename, exc.line, "", f"not valid YAML: {exc}")
        raise PlanError([problem_at]) from exc

    def problem(path: Path, message: str) -> Problem:
        return Problem(filename, line_of(lines, path), format_path(path), message)

    schema_errors = sorted(
        _validator().iter_errors(loaded), key=lambda e: list(map(str, e.absolute_path))
    )
    if schema_errors:
        raise PlanError(
            [problem(tuple(e.absolute_path), _schema_message(e)) for e in schema_errors]
        )
    data = cast(SchemaObject, loaded)  # valid against the schema: from here on, its shape
    problems = semantic_problems(data, problem)
    if problems:
        raise PlanError(problems)
    objectives = tuple(build_objective(o) for o in data["objectives"])
    plan = Plan(data["shop"], data["timezone"], objectives, build_kpis(data))
    return ParsedPlan(plan, data, filename, lines)


def _limits() -> Check:
    """A `load_with_lines` check refusing the first objective, key result or title over the
    limits as soon as it is read: a file far over them costs no more than one just over."""

    def check(path: Path, value: JsonValue) -> str | None:
        match path:
            case ("objectives", int(i)) if i >= MAX_OBJECTIVES:
                return f"over the limit: a plan file holds at most {MAX_OBJECTIVES} objectives"
            case ("objectives", int(), "key_results", int(j)) if j >= MAX_KEY_RESULTS:
                return f"over the limit: an objective has at most {MAX_KEY_RESULTS} key results"
            case ("kpis", int(i)) if i >= MAX_KPIS:
                return f"over the limit: a plan file holds at most {MAX_KPIS} KPIs"
            case ("objectives", int(), "title") | (
                "objectives", int(), "key_results", int(), "title"
            ) | ("kpis", int(), "title"):  # fmt: skip
                if isinstance(value, str) and len(value) > MAX_TITLE_CHARS:
                    return f"{len(value)} characters: a title holds at most {MAX_TITLE_CHARS}"
        return None

    return check


def _schema_message(error: ValidationError) -> str:
    path = list(error.absolute_path)
    if path and path[-1] == "target":
        return 'must be a number or a relative target like "+15%" or "-10%"'
    if path[:1] == ["kpis"] and path[-1:] == ["window"]:
        return f'must be a number of local days like "7d", from "1d" to "{MAX_WINDOW_DAYS}d"'
    if error.context:
        # A oneOf/anyOf failed: explain it by the branch that came closest (fewest errors).
        branches: dict[object, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
        closest = min(branches.values(), key=len)
        deepest = best_match(closest)
        if deepest is not None and list(deepest.absolute_path) != path:
            rest = format_path(tuple(deepest.absolute_path)[len(path) :])
            return f"{rest}: {deepest.message!s}"
        if deepest is not None:
            return str(deepest.message)
    return str(error.message)
