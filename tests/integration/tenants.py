"""Setting shops up the way users do (tokens, webhook secrets) and reading what counted, for
the tests that run the intake."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request


def cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "okrflow", *args], env=env, input=stdin, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip


def token(env: dict[str, str], shop: str) -> str:
    """A new token for `shop` (`okrflow tokens create`)."""
    created = cli(env, "tokens", "create", "--shop", shop, "--name", "test")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def set_secret(env: dict[str, str], shop: str, platform: str, secret: str) -> None:
    done = cli(env, "webhooks", "set-secret", "--shop", shop, "--platform", platform,
               stdin=secret + "\n")  # fmt: skip
    assert done.returncode == 0, done.stderr


def ready(url: str) -> int:
    """The status of GET `url`, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except OSError:
        return 0


def values(env: dict[str, str], shop: str) -> dict[str, float]:
    """Key result -> value of the shop's first objective (`okrflow progress`); {} on failure."""
    done = cli(env, "progress", "--shop", shop, "--format", "json")
    if done.returncode != 0:
        return {}
    report = json.loads(done.stdout)
    return {kr["key"]: kr["value"] for kr in report["shops"][0]["objectives"][0]["key_results"]}
