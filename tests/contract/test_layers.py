"""Layers point down: the store holds SQL only (it imports no part above it) and the domain
is pure (no database, Kafka or metrics libraries, no part above it). Read from the source
with `ast`, so an import inside a function or under TYPE_CHECKING counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "okrflow"

ABOVE_STORE = ("okrflow.plans", "okrflow.ingest", "okrflow.exporter", "okrflow.reports",
               "okrflow.web", "okrflow.intake", "okrflow.access")  # fmt: skip
NOT_IN_DOMAIN = ("sqlalchemy", "faust", "prometheus_client", "aiokafka", "okrflow.store",
                 "okrflow.ingest", "okrflow.exporter", "okrflow.plans", "okrflow.reports",
                 "okrflow.web", "okrflow.intake", "okrflow.access")  # fmt: skip


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


def test_store_imports_nothing_above_it() -> None:
    assert _violations("store", ABOVE_STORE) == []


def test_domain_is_pure() -> None:
    assert _violations("domain", NOT_IN_DOMAIN) == []


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
