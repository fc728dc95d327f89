"""`okrflow tokens` and `okrflow webhooks` as real processes: a token is printed once, alone
on the last line, never listed; a revoked token no longer authenticates; a webhook secret is
read from stdin; bad input is one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from okrflow.access.tokens import TokenAuthenticator, hash_token
from okrflow.intake.credentials import WebhookSecrets
from okrflow.store.engine import make_engine
from tests.integration.processes import okrflow, okrflow_env


def _okrflow_stdin(
    env: dict[str, str], data: bytes, *args: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "okrflow", *args],
        env=env, input=data, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def _one_line_refusal(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert result.stdout == ""


def test_tokens_create_list_revoke(database_url: str) -> None:
    env = okrflow_env(database_url=database_url)

    created = okrflow(env, "tokens", "create", "--shop", "salone-bella", "--name", "checkout")
    assert created.returncode == 0, created.stderr
    *about, token = created.stdout.splitlines()
    assert token.startswith("okr_") and len(token) == 47
    assert about == ["token 1, shop salone-bella, name checkout: shown once; store it now"]
    other = okrflow(env, "tokens", "create", "--shop", "another")
    assert other.returncode == 0, other.stderr
    other_token = other.stdout.splitlines()[-1]

    reader = make_engine(database_url)
    auth = TokenAuthenticator(reader, cache_seconds=0)
    assert auth.authenticate(token) == "salone-bella"
    assert auth.authenticate(other_token) == "another"

    listed = okrflow(env, "tokens", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        ["1", "salone-bella", "checkout"],
        ["2", "another", "-"],
    ]
    assert all(line.endswith("\tactive") and "\tcreated 20" in line for line in lines)
    for secret in (token, hash_token(token), other_token, hash_token(other_token)):
        assert secret not in listed.stdout + listed.stderr
    only = okrflow(env, "tokens", "list", "--shop", "another")
    assert [line.split("\t")[0] for line in only.stdout.splitlines()] == ["2"]

    revoked = okrflow(env, "tokens", "revoke", "1")
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout == "token 1 revoked\n"
    assert auth.authenticate(token) is None
    assert auth.authenticate(other_token) == "another"
    relisted = okrflow(env, "tokens", "list", "--shop", "salone-bella")
    assert "\trevoked 20" in relisted.stdout

    _one_line_refusal(okrflow(env, "tokens", "revoke", "1"), "already revoked")
    _one_line_refusal(okrflow(env, "tokens", "revoke", "99"), "no active token 99")
    reader.dispose()


def test_webhook_secret_from_stdin(database_url: str) -> None:
    env = okrflow_env(database_url=database_url)
    args = ("webhooks", "set-secret", "--shop", "salone-bella", "--platform", "stripe")

    stored = _okrflow_stdin(env, b"whsec_first\n", *args)
    assert stored.returncode == 0, stored.stderr
    assert "whsec_first" not in stored.stdout + stored.stderr
    replaced = _okrflow_stdin(env, b"whsec_second\r\n", *args)
    assert replaced.returncode == 0, replaced.stderr

    reader = make_engine(database_url)
    secrets = WebhookSecrets(reader, cache_seconds=0)
    assert secrets.get("salone-bella", "stripe") == "whsec_second"
    assert secrets.get("salone-bella", "shopify") is None
    reader.dispose()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("tokens", "create", "--shop", "Salone Bella"), "shop 'Salone Bella'"),
        (("tokens", "create", "--shop", "salone", "--name", "a\tb"), "name"),
        (("tokens", "list", "--shop=-x"), "shop '-x'"),
        (("tokens", "revoke", "one"), "token id 'one'"),
        (("tokens", "revoke", "99999999999999999999"), "token id"),
    ],
)
def test_bad_token_arguments_are_one_line_and_create_no_database(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    database = tmp_path / "okrflow.db"
    env = okrflow_env(database_url=f"sqlite:///{database}")
    _one_line_refusal(okrflow(env, *args), f"okrflow tokens {args[1]}: ", expected)
    assert not database.exists()


@pytest.mark.parametrize(
    ("platform", "stdin", "expected"),
    [
        ("stripe", b"", "the secret is empty"),
        ("stripe", b"\n", "the secret is empty"),
        ("stripe", b"  whsec\n", "whitespace"),
        ("stripe", b"whsec\n\n", "whitespace"),
        ("stripe", b"whsec\nsecond\n", "control characters"),
        ("stripe", b"\xffwhsec", "not UTF-8"),
        ("paypal", b"whsec\n", "platform 'paypal'"),
    ],
)
def test_bad_webhook_secrets_are_one_line_and_write_nothing(
    tmp_path: Path, platform: str, stdin: bytes, expected: str
) -> None:
    database = tmp_path / "okrflow.db"
    env = okrflow_env(database_url=f"sqlite:///{database}")
    result = _okrflow_stdin(
        env, stdin, "webhooks", "set-secret", "--shop", "salone-bella", "--platform", platform
    )
    _one_line_refusal(result, "okrflow webhooks set-secret: ", expected)
    assert not database.exists()


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    from okrflow.exitcodes import ExitCode

    env = okrflow_env(database_url=f"sqlite:///{tmp_path / 'missing' / 'okrflow.db'}")
    listed = okrflow(env, "tokens", "list")  # read only: the database must exist
    assert listed.returncode == ExitCode.DATABASE_UNREACHABLE
    assert "Traceback" not in listed.stderr
    assert listed.stderr.startswith("okrflow tokens list: no SQLite database at ")
    assert len(listed.stderr.splitlines()) == 1
    created = okrflow(env, "tokens", "create", "--shop", "salone-bella")  # its folder is missing
    assert created.returncode == ExitCode.DATABASE_UNREACHABLE
    assert "Traceback" not in created.stderr
    assert created.stderr.startswith("okrflow tokens create: database error: ")
    assert len(created.stderr.splitlines()) == 1
