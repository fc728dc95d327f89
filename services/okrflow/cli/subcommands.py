"""What each command module of the CLI registers its subcommands on."""

from __future__ import annotations

import argparse
from typing import TypeAlias

# `okrflow`'s COMMAND (or a command's ACTION): each module's `register` adds its parsers here.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
