"""Layers point down, as docs/architecture.md's table says: each package imports only what
its row allows, no module imports itself back through others (no circles), the store holds
SQL only and the domain is pure (no database, Kafka or metrics libraries). Read from the
source with `ast`, so an import inside a function or under TYPE_CHECKING counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "okrflow"

ABOVE_STORE = ("okrflow.plans", "okrflow.ingest", "okrflow.backfill", "okrflow.counting",
               "okrflow.exporter", "okrflow.reports", "okrflow.intake", "okrflow.access",
               "okrflow.cli", "okrflow.demo")  # fmt: skip

# docs/architecture.md, "Layers": what each part of okrflow may import of okrflow.
FOUNDATIONS = frozenset({"settings", "exitcodes", "retention", "kafkaclient", "topics",
                         "gctuning", "clipipe", "jsontypes", "failures"})  # fmt: skip
ANYTHING = frozenset({"*"})
MAY_IMPORT: dict[str, frozenset[str]] = {
    "__main__": ANYTHING,
    "cli": ANYTHING,
    "demo": ANYTHING,
    "demo_shops": frozenset({"domain"}) | FOUNDATIONS,
    "exporter.pages": frozenset({"exporter", "access", "reports", "store", "domain", "ops"})
    | FOUNDATIONS,
    "exporter": frozenset(
        {"exporter.pages", "reports", "plans", "store", "events", "domain", "ops"}
    )
    | FOUNDATIONS,
    "intake": frozenset({"access", "reports", "plans", "store", "events", "domain", "ops"})
    | FOUNDATIONS,
    "backfill": frozenset(
        {"ingest", "plans", "counting", "store", "events", "domain", "ops", "readonly"}
    )
    | FOUNDATIONS,
    "ingest": frozenset({"plans", "counting", "store", "events", "domain", "ops", "readonly"})
    | FOUNDATIONS,
    "devkafka": frozenset({"ops"}) | FOUNDATIONS,
    "reports": frozenset({"plans", "store", "domain", "readonly"}) | FOUNDATIONS,
    "plans": frozenset({"store", "events", "domain", "readonly"}) | FOUNDATIONS,
    "access": frozenset({"store"}) | FOUNDATIONS,
    "readonly": frozenset({"store"}) | FOUNDATIONS,
    "counting": frozenset({"events", "domain"}),
    "events": frozenset({"ops"}) | FOUNDATIONS,
    "ops": FOUNDATIONS,
    "store": frozenset({"domain", "exitcodes"}),  # its SchemaOutdated is an OperatorError
    "domain": frozenset(),
    **{name: FOUNDATIONS for name in FOUNDATIONS},
}
IO_LIBRARIES = ("sqlalchemy", "faust", "prometheus_client", "aiokafka", "tenacity")
NOT_IN_DOMAIN = (*IO_LIBRARIES, "okrflow.__version__",
                 *(f"okrflow.{part}" for part in MAY_IMPORT if part != "domain"))  # fmt: skip
# The counting core: decode, match, count; okrflow.events and okrflow.domain only, no I/O.
NOT_IN_COUNTING = (*IO_LIBRARIES, "okrflow.__version__",
                   *(f"okrflow.{part}" for part in MAY_IMPORT
                     if part not in ("counting", "events", "domain")))  # fmt: skip
# Imports that break the table today, each to be fixed (this list only shrinks).
TO_FIX: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module `source` (the text of `module`) imports, absolute; for `from m import n`
    both m and m.n (n may be a submodule)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    files = sorted((PACKAGE / folder).rglob("*.py"))
    assert files, f"no modules under {PACKAGE / folder}"
    bad = []
    for path in files:
        name = _module_name(path)
        for imported in sorted(
            imported_modules(path.read_text(), name, is_package=path.name == "__init__.py")
        ):
            if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PACKAGE.parent)} imports {imported}")
    return bad


def _part(module: str) -> str | None:
    """The row of docs/architecture.md's table that `module` (okrflow.X...) belongs to."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "okrflow":
        return None
    if parts[1:3] == ["exporter", "pages"]:
        return "exporter.pages"
    return parts[1]


def _graph() -> dict[str, set[str]]:
    """Module -> the okrflow modules it imports (those that exist as files)."""
    names = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        found = imported_modules(path.read_text(), name, is_package=path.name == "__init__.py")
        graph[name] = {m for m in found if m in names and m != name}
    return graph


def test_every_part_imports_only_what_its_row_allows() -> None:
    bad = set()
    for module, imports in _graph().items():
        part = _part(module)
        if part is None:  # okrflow/__init__.py: the version
            continue
        assert part in MAY_IMPORT, f"{module}: no row in docs/architecture.md's table"
        allowed = MAY_IMPORT[part]
        for imported in imports:
            target = _part(imported)
            if target in (None, part) or ("*" in allowed and (part, target) != ("demo", "cli")):
                continue
            if target not in allowed and (part, target) not in TO_FIX:
                bad.add(f"{module} imports {imported}")
    assert sorted(bad) == []


def test_what_is_to_fix_is_still_there() -> None:
    """An entry of TO_FIX that no longer happens must leave the list."""
    seen = {(_part(m), _part(i)) for m, imports in _graph().items() for i in imports}
    assert seen >= TO_FIX, TO_FIX - seen


def test_no_module_imports_itself_back() -> None:
    graph = _graph()
    circles = []
    for start in sorted(graph):  # a depth-first walk from each module, bounded by the graph
        stack, seen = [(start, (start,))], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start and not _allowed_circle(path):
                    circles.append(" -> ".join((*path, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*path, nxt)))
    assert circles == []


def _allowed_circle(path: tuple[str, ...]) -> bool:
    """A package's __init__ re-exporting a submodule that imports a sibling through it is
    not a circle of ideas; nor is what TO_FIX still lists."""
    parts = {_part(m) for m in path}
    return any({a, b} <= parts for a, b in TO_FIX)


def test_store_imports_nothing_above_it() -> None:
    assert _violations("store", ABOVE_STORE) == []


def test_domain_is_pure() -> None:
    assert _violations("domain", NOT_IN_DOMAIN) == []


def test_counting_core_is_pure() -> None:
    assert _violations("counting", NOT_IN_COUNTING) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import okrflow.plans.build", "okrflow.plans.build"),
        ("from okrflow.plans.diff import Change", "okrflow.plans.diff"),
        ("from okrflow import plans", "okrflow.plans"),
        ("from ..plans import diff", "okrflow.plans"),
        ("from .. import ingest", "okrflow.ingest"),
        ("def f():\n    from okrflow.reports.progress import progress_report", "okrflow.reports"),
        ("if TYPE_CHECKING:\n    import sqlalchemy", "sqlalchemy"),
    ],
)
def test_every_kind_of_import_is_seen(source: str, expected: str) -> None:
    found = imported_modules(source, "okrflow.store.plans")
    assert any(m == expected or m.startswith(expected + ".") for m in found), found
