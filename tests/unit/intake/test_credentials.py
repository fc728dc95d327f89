"""Tokens and webhook secrets on their own: the authenticator's cache on a SQLite file with
its queries counted, tokens listed and refused, webhook secrets cached and refused (the
token's form and hash, and the verdict cache: tests/unit/access)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from okrflow.access.tokens import TokenAuthenticator, new_token
from okrflow.intake.credentials import (
    WebhookSecrets,
    create_token,
    list_tokens,
    revoke_token,
    set_webhook_secret,
)
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the authenticator and webhook secrets on a SQLite file --------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """The database, for writing: the CLI's engine."""
    engine = make_engine(f"sqlite:///{tmp_path / 'okrflow.db'}", writer=True)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def reader(engine: Engine) -> Iterator[Engine]:
    """The same database, for reading: the intake's engine (no BEGIN IMMEDIATE per lookup)."""
    reader = make_engine(engine.url.render_as_string())
    yield reader
    reader.dispose()


class Queries:
    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


def test_a_token_authenticates_as_its_shop_until_revoked(engine: Engine, reader: Engine) -> None:
    token_id, token = create_token(engine, "salone-bella", "checkout", NOW)
    clock = Clock()
    auth = TokenAuthenticator(reader, cache_seconds=2.0, clock=clock)
    queries = Queries(reader)

    assert auth.authenticate(token) == "salone-bella"
    assert queries.count == 1
    for _ in range(100):
        assert auth.authenticate(token) == "salone-bella"
    assert queries.count == 1  # steady state: no query

    assert revoke_token(engine, token_id, NOW)
    queries.count = 0
    clock.now += 1.0
    assert auth.authenticate(token) == "salone-bella"  # within cache_seconds
    assert queries.count == 0
    clock.now += 1.0
    assert auth.authenticate(token) is None
    assert queries.count == 1
    assert auth.authenticate(token) is None
    assert queries.count == 1  # the refusal is cached too


def test_unknown_tokens_are_refused_and_malformed_ones_cost_no_query(
    engine: Engine, reader: Engine
) -> None:
    auth = TokenAuthenticator(reader, clock=Clock())
    queries = Queries(reader)
    unknown = new_token()
    assert auth.authenticate(unknown) is None
    assert auth.authenticate(unknown) is None
    assert queries.count == 1
    for malformed in ("", "okr_", "Bearer x", "okr_" + "a" * 42, "okr_" + "a" * 44,
                      "okr_" + "a" * 42 + "=", "xyz_" + "a" * 43, new_token() + "\n"):  # fmt: skip
        assert auth.authenticate(malformed) is None
    assert queries.count == 1


def test_authenticate_from_a_thread_pool(engine: Engine, reader: Engine) -> None:
    tokens = {create_token(engine, f"shop-{i}", None, NOW)[1]: f"shop-{i}" for i in range(5)}
    auth = TokenAuthenticator(reader)
    queries = Queries(reader)
    asked = [*tokens, new_token()] * 100

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(auth.authenticate, asked))
    assert answers == [tokens.get(t) for t in asked]
    assert queries.count < 60  # a few per token at most (concurrent first lookups)


def test_tokens_are_listed_without_token_or_hash(engine: Engine) -> None:
    first, _ = create_token(engine, "salone-bella", "checkout", NOW)
    second, _ = create_token(engine, "another", None, NOW)
    revoke_token(engine, first, NOW)
    rows = list_tokens(engine)
    assert [(r.id, r.shop, r.name, r.revoked_at) for r in rows] == [
        (first, "salone-bella", "checkout", NOW),
        (second, "another", None, None),
    ]
    assert [r.id for r in list_tokens(engine, "another")] == [second]
    assert not {"token", "token_hash"} & set(vars(rows[0]))


@pytest.mark.parametrize(
    ("shop", "name", "problem"),
    [
        ("Salone", None, "shop 'Salone'"),
        ("-salone", None, "shop '-salone'"),
        ("salone\n", None, "shop 'salone\\n'"),
        ("s" * 64, None, "must be 1-63"),
        ("salone", "", "name ''"),
        ("salone", "a\tb", "printable"),
        ("salone", "x" * 201, "1-200"),
    ],
)
def test_create_token_refuses_bad_shops_and_names(
    engine: Engine, shop: str, name: str | None, problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        create_token(engine, shop, name, NOW)
    assert list_tokens(engine) == []


def test_webhook_secrets_are_cached_and_replaced(engine: Engine, reader: Engine) -> None:
    clock = Clock()
    secrets = WebhookSecrets(reader, cache_seconds=2.0, clock=clock)
    queries = Queries(reader)
    assert secrets.get("salone-bella", "stripe") is None
    set_webhook_secret(engine, "salone-bella", "stripe", "whsec_one", NOW)
    queries.count = 0
    assert secrets.get("salone-bella", "stripe") is None  # cached "none set"
    clock.now += 2.0
    assert secrets.get("salone-bella", "stripe") == "whsec_one"
    set_webhook_secret(engine, "salone-bella", "stripe", "whsec_two", NOW)
    clock.now += 2.0
    assert secrets.get("salone-bella", "stripe") == "whsec_two"
    assert secrets.get("salone-bella", "shopify") is None
    queries.count = 0
    assert secrets.get("salone-bella", "paypal") is None
    assert secrets.get("Bad Shop", "stripe") is None
    assert queries.count == 0


@pytest.mark.parametrize(
    ("platform", "secret", "problem"),
    [
        ("paypal", "s", "platform 'paypal': must be one of shopify, stripe"),
        ("stripe", "", "empty"),
        ("stripe", " whsec", "whitespace"),
        ("stripe", "whsec\n", "whitespace"),
        ("stripe", "whsec\nsecond", "control characters"),
    ],
)
def test_bad_webhook_secrets_are_refused(
    engine: Engine, platform: str, secret: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        set_webhook_secret(engine, "salone-bella", platform, secret, NOW)
    assert WebhookSecrets(engine).get("salone-bella", "stripe") is None
