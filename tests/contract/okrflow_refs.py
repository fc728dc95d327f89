"""What deploy/ may refer to in okrflow: its subcommands, its settings, the paths each process
serves. test_compose.py and test_k8s.py resolve every reference in the deploy files against
these, the way `okrflow` itself would (its parser, its Settings)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from okrflow.cli import build_parser
from okrflow.ingest.supervisor import process_count
from okrflow.settings import Settings

REPO = Path(__file__).resolve().parents[2]

# Each long-running subcommand, the settings it listens with, the paths it serves and where.
LISTEN = {
    "worker": ("worker_metrics_host", "worker_metrics_port"),
    "exporter": ("exporter_host", "exporter_port"),
    "intake": ("intake_host", "intake_port"),
}
_OPS_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
SERVED: dict[str, frozenset[str]] = {
    "worker": _OPS_PATHS,
    "exporter": _OPS_PATHS,
    "intake": _OPS_PATHS | {"/v1/events"},
}
# Where the worker's and the exporter's routes are declared (the intake's are in its OpenAPI
# document, checked against the app by the intake's own tests).
ROUTE_SOURCES = {
    "worker": REPO / "services" / "okrflow" / "ingest" / "worker.py",
    "exporter": REPO / "services" / "okrflow" / "exporter" / "server.py",
}
INTAKE_OPENAPI = REPO / "schemas" / "intake.openapi.json"


def setting_name(env_name: str) -> str | None:
    """The Settings field an `OKRFLOW_*` variable sets, or None when there is none."""
    if not env_name.startswith("OKRFLOW_"):
        return None
    field = env_name.removeprefix("OKRFLOW_").lower()
    return field if field in Settings.model_fields else None


def secret_settings() -> set[str]:
    """The `OKRFLOW_*` names of the settings that hold secrets (SecretStr), and the database
    URL, whose password is in it."""
    names = {"OKRFLOW_DATABASE_URL"}
    for name, field in Settings.model_fields.items():
        if "SecretStr" in repr(field.annotation):
            names.add(f"OKRFLOW_{name.upper()}")
    return names


@dataclass(frozen=True)
class Invocation:
    """An `okrflow` command line with its environment, resolved as `okrflow` resolves them."""

    args: argparse.Namespace
    settings: Settings

    @property
    def subcommand(self) -> str:
        return str(self.args.command)

    def listens_on(self) -> tuple[str, int]:
        host, port = LISTEN[self.subcommand]
        return str(getattr(self.settings, host)), int(getattr(self.settings, port))

    def ports(self) -> set[int]:
        """Every port its processes serve on: a worker's process i of N on the port + i."""
        port = self.listens_on()[1]
        if self.subcommand != "worker" or not port:
            return {port}
        return {port + i for i in range(process_count(self.settings))}


@contextmanager
def _only_env(env: Mapping[str, str]) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("OKRFLOW_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(env)
    try:
        yield
    finally:
        for name in env:
            os.environ.pop(name, None)
        os.environ.update(saved)


def invoke(command: Sequence[str], env: Mapping[str, str]) -> Invocation:
    """Parse `command` (starting with `okrflow`) with okrflow's parser and build its Settings
    from `env` (and no other OKRFLOW_* variable) and the flags, as `okrflow.cli.main` does.

    Raises AssertionError for what is not an okrflow command line, ValueError for settings
    okrflow would refuse."""
    assert command and command[0] == "okrflow", f"not an okrflow command: {command}"
    try:
        args = build_parser().parse_args(list(command[1:]))
    except SystemExit:
        raise AssertionError(f"okrflow does not accept {list(command)}") from None
    unknown = sorted(k for k in env if k.startswith("OKRFLOW_") and setting_name(k) is None)
    assert not unknown, f"not okrflow settings: {unknown}"
    flags = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    with _only_env(env):
        settings = Settings(**flags)
    return Invocation(args, settings)


def intake_paths() -> set[str]:
    return set(json.loads(INTAKE_OPENAPI.read_text())["paths"])
