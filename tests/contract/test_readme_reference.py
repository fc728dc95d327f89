"""The reference tables cover every setting, every exit code and every command, each in its one
home: docs/configuration.md (settings), docs/cli.md (commands, exit codes). The README is the
door: at most 10 KB, linking to those homes, and naming `make test`, the command CI runs."""

from __future__ import annotations

import argparse
import re
from itertools import takewhile
from pathlib import Path

from okrflow.cli import build_parser
from okrflow.exitcodes import ExitCode
from okrflow.settings import Settings

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CONFIGURATION = REPO / "docs" / "configuration.md"
CLI = REPO / "docs" / "cli.md"


def _first_cells(page: Path, heading: str) -> list[str]:
    """The first cell of every body row of the first table under the heading line `heading`,
    before the next `## ` heading."""
    text = page.read_text()
    found = re.search(f"^{re.escape(heading)}$", text, re.M)
    assert found, f"{page.name}: no heading {heading!r}"
    end = text.find("\n## ", found.end())
    section = text[found.end() : end if end != -1 else None]
    lines = section.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    rows = list(takewhile(lambda line: line.startswith("|"), lines[first:]))
    assert len(rows) > 2, f"{page.name}, {heading!r}: no table"
    # rows[0] is the header, rows[1] the |---| line; a `\|` inside a cell is not a separator.
    return [re.split(r"(?<!\\)\|", row)[1].strip() for row in rows[2:]]


def _command_paths() -> set[str]:
    """Every command line okrflow's parser accepts, down to the action: `okrflow kafka start`,
    `okrflow tokens create`, `okrflow worker`."""
    paths: set[str] = set()

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        nested = False
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                nested = True
                for name, sub in action.choices.items():
                    walk(sub, f"{prefix} {name}")
            elif not action.option_strings and action.choices:
                nested = True
                paths.update(f"{prefix} {choice}" for choice in action.choices)
        if not nested:
            paths.add(prefix)

    walk(build_parser(), "okrflow")
    return paths


def test_every_setting_is_in_the_configuration_table() -> None:
    cells = " ".join(_first_cells(CONFIGURATION, "# Configuration: every `OKRFLOW_*` setting"))
    documented = set(re.findall(r"`(OKRFLOW_[A-Z0-9_]+)`", cells))
    settings = {f"OKRFLOW_{name.upper()}" for name in Settings.model_fields}
    assert not settings - documented, f"docs/configuration.md lacks {sorted(settings - documented)}"
    assert not documented - settings, f"not settings: {sorted(documented - settings)}"


def test_every_exit_code_is_in_the_exit_code_table() -> None:
    rows = [int(cell.strip("`")) for cell in _first_cells(CLI, "## Exit codes")]
    assert sorted(rows) == sorted(int(code) for code in ExitCode), "docs/cli.md, 'Exit codes'"


def test_every_command_is_in_the_command_table() -> None:
    cells = _first_cells(CLI, "## Commands")
    # A row's command is the words before its first argument or flag: `okrflow apply FILE...`.
    documented = {
        " ".join(
            takewhile(lambda word: re.fullmatch(r"[a-z][a-z-]*", word), cell.strip("`").split())
        )
        for cell in cells
    }
    missing = sorted(_command_paths() - documented)
    assert not missing, f"docs/cli.md's command table lacks {missing}"
    unknown = sorted(documented - _command_paths())
    assert not unknown, f"docs/cli.md's command table names commands okrflow lacks: {unknown}"


def test_the_readme_is_a_door() -> None:
    text = README.read_text()
    assert len(text.encode()) <= 10 * 1024, f"README.md is {len(text.encode())} bytes"
    for home in ("docs/cli.md", "docs/configuration.md", "docs/architecture.md"):
        assert f"({home})" in text, f"README.md does not link to {home}"
    assert "`make test`" in text and "`make run`" in text
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert "make test" in ci, ".ci/run no longer runs `make test`, the README's test command"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to -."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.*)$", text, re.M)}


def test_every_link_in_the_readme_and_docs_resolves() -> None:
    broken = []
    for page in [README, *sorted((REPO / "docs").rglob("*.md"))]:
        text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"https?:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists() or (
                anchor and dest.suffix == ".md" and anchor not in _anchors(dest)
            ):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, f"links that do not resolve: {broken}"
