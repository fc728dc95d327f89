"""`okrflow --help` describes every command and flag in words."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from okrflow.cli import build_parser


def _parsers(
    parser: argparse.ArgumentParser, name: str = "okrflow"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_command_and_flag_has_help() -> None:
    missing = []
    commands = list(_parsers(build_parser()))
    assert len(commands) > 15  # the walk reaches nested subcommands (tokens create, ...)
    for name, parser in commands:
        if name != "okrflow" and not (parser.description or "").strip():
            missing.append(f"{name}: no description")
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                flag = "/".join(action.option_strings) or action.dest
                missing.append(f"{name} {flag}: no help")
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    if not (choice.help or "").strip():
                        missing.append(f"{name} {choice.dest}: no help in the command list")
    assert missing == []
