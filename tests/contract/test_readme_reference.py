"""The README's reference tables cover every setting, every exit code and every command."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from okrflow.cli import build_parser
from okrflow.exitcodes import ExitCode
from okrflow.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    return README[start : end if end != -1 else None]


def test_every_setting_is_in_the_configuration_table() -> None:
    table = _section("### Configuration")
    missing = [
        f"OKRFLOW_{name.upper()}" for name in Settings.model_fields
        if f"OKRFLOW_{name.upper()}" not in table
    ]  # fmt: skip
    assert not missing, f"README's configuration table lacks {missing}"


def test_every_exit_code_is_in_the_exit_code_table() -> None:
    table = _section("### Exit codes")
    rows = {int(code) for code in re.findall(r"^\| `?(\d+)`? \|", table, re.M)}
    assert rows == {int(code) for code in ExitCode}


def test_every_command_is_in_the_command_table() -> None:
    table = _section("## Command line")
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [name for name in sub.choices if f"`okrflow {name}" not in table]
    assert not missing, f"README's command table lacks {missing}"
