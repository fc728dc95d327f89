"""No `Any` in a public signature in services/ unless a comment says why (issue 22, "typed
seams"). Read from the source with `ast`.

Public: a module-level function, class or type alias whose name does not start with `_`, in a
module whose name does not (`__init__.py` is its package's), and of a public class its
methods (dunders such as `__init__` included: they are how it is called) and its annotated
attributes (a dataclass's or a Struct's fields). Its annotations (parameters, `*args`,
`**kwargs`, returns, attributes) or an alias's value must not mention `Any`, `dict[str, Any]`
included, unless its line, or the comment just above it, holds `# Any: <why>`.

Where an arbitrary JSON value crosses, `okrflow.jsontypes` names it; a plan's schema-valid
data is `jsontypes.SchemaObject`, justified once where it is defined.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "okrflow"
JUSTIFIED = re.compile(r"#\s*Any:\s*\S")

# Public `Any` in the modules other sessions of issue 22 are reworking (cli.py, ingest/,
# plans/matching.py), as "module:where". This list only shrinks: fix one, remove it here.
TO_FIX: set[str] = set()


def _mentions_any(node: ast.expr | None) -> bool:
    if node is None:
        return False
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id == "Any":
            return True
        if isinstance(n, ast.Attribute) and n.attr == "Any":
            return True
        if isinstance(n, ast.Constant) and isinstance(n.value, str):  # "dict[str, Any]"
            try:
                if _mentions_any(ast.parse(n.value, mode="eval").body):
                    return True
            except SyntaxError:
                pass
    return False


def _public(name: str) -> bool:
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def _signature(
    f: ast.FunctionDef | ast.AsyncFunctionDef, where: str
) -> Iterator[tuple[str, ast.expr]]:
    a = f.args
    for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs):
        if arg.annotation is not None:
            yield f"{where}({arg.arg})", arg.annotation
    if a.vararg is not None and a.vararg.annotation is not None:
        yield f"{where}(*{a.vararg.arg})", a.vararg.annotation
    if a.kwarg is not None and a.kwarg.annotation is not None:
        yield f"{where}(**{a.kwarg.arg})", a.kwarg.annotation
    if f.returns is not None:
        yield f"{where} -> return", f.returns


def public_annotations(tree: ast.Module) -> Iterator[tuple[str, ast.expr]]:
    """(where, annotation or alias value) of every public seam of a module."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not node.name.startswith("_"):
                yield from _signature(node, node.name)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and _public(item.name):
                    yield from _signature(item, f"{node.name}.{item.name}")
                elif (
                    isinstance(item, ast.AnnAssign)
                    and isinstance(item.target, ast.Name)
                    and not item.target.id.startswith("_")
                ):
                    yield f"{node.name}.{item.target.id}", item.annotation
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if not node.target.id.startswith("_"):
                yield node.target.id, node.annotation
                if node.value is not None and _is_alias(node.annotation):
                    yield node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and not target.id.startswith("_"):
                yield target.id, node.value  # an alias: `Event = dict[str, Any]`


def _is_alias(annotation: ast.expr) -> bool:
    return isinstance(annotation, ast.Name | ast.Attribute) and "TypeAlias" in ast.unparse(
        annotation
    )


def unjustified_any(source: str) -> list[str]:
    """Every public seam of `source` that mentions `Any` without a `# Any:` comment."""
    lines = source.splitlines()
    found = []
    for where, node in public_annotations(ast.parse(source)):
        if not _mentions_any(node):
            continue
        if not _justified(lines, node.lineno, node.end_lineno or node.lineno):
            found.append(where)
    return found


def _justified(lines: list[str], first: int, last: int) -> bool:
    """`# Any: <why>` on the annotation's lines (1-based) or in the comment lines just above."""
    if any(JUSTIFIED.search(line) for line in lines[first - 1 : last]):
        return True
    above = first - 2
    while above >= 0 and lines[above].lstrip().startswith("#"):
        if JUSTIFIED.search(lines[above]):
            return True
        above -= 1
    return False


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name.startswith("_") and path.name != "__init__.py":
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _found() -> set[str]:
    return {
        f"{module}:{where}"
        for module, path in _modules()
        for where in unjustified_any(path.read_text())
    }


def test_no_public_signature_mentions_any_without_a_reason() -> None:
    new = sorted(_found() - TO_FIX)
    assert not new, (
        "Any in a public signature: type it (okrflow.jsontypes for JSON, the real class), or "
        "say why on the line or in the comment just above with `# Any: <why>`:\n  "
        + "\n  ".join(new)
    )


def test_the_list_to_fix_only_shrinks() -> None:
    fixed = sorted(TO_FIX - _found())
    assert not fixed, "fixed (remove from TO_FIX):\n  " + "\n  ".join(fixed)


PROBE = """
from typing import Any, TypeAlias
from dataclasses import dataclass

Alias = dict[str, Any]
Named: TypeAlias = "list[Any]"
Fine: TypeAlias = "dict[str, int]"


def seam(a: int, b: dict[str, Any], *rest: Any, **more: int) -> Any: ...


def justified(
    a: Any,  # Any: a reason
) -> int: ...


def _private(a: Any) -> Any: ...


@dataclass
class Row:
    value: Any
    # Any: a reason
    # that goes on
    other: dict[str, Any]
    # a comment without one
    more: list[Any]
    _hidden: Any

    def method(self, x: "Any") -> None: ...
    def __init__(self, y: Any) -> None: ...
    def _helper(self, z: Any) -> None: ...


class _Private:
    def method(self, x: Any) -> None: ...
"""


def test_the_finder_sees_every_kind_of_seam_and_honours_a_reason() -> None:
    assert unjustified_any(PROBE) == [
        "Alias",
        "Named",
        "seam(b)",
        "seam(*rest)",
        "seam -> return",
        "Row.value",
        "Row.more",
        "Row.method(x)",
        "Row.__init__(y)",
    ]
