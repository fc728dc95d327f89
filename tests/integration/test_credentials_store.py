"""okrflow.store.credentials on real SQLite and PostgreSQL: tokens are inserted, found by hash,
listed and revoked once; webhook secrets are inserted, then replaced; times come back as
aware UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from okrflow.access.tokens import TokenAuthenticator
from okrflow.intake.credentials import create_token, revoke_token
from okrflow.store import credentials as store
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
HASH_A, HASH_B, HASH_C = ("a" * 64, "b" * 64, "c" * 64)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def test_tokens_are_inserted_found_listed_and_revoked_once(engine: Engine) -> None:
    with engine.begin() as conn:
        a = store.insert_token(conn, "salone-bella", "checkout", HASH_A, NOW)
        b = store.insert_token(conn, "another", None, HASH_B, NOW)
        c = store.insert_token(conn, "salone-bella", None, HASH_C, LATER)
    assert a < b < c

    with engine.connect() as conn:
        found = store.find_token(conn, HASH_A)
        assert found == store.TokenRow(a, "salone-bella", "checkout", NOW, None)
        assert found is not None and found.created_at.tzinfo is not None
        assert store.find_token(conn, "d" * 64) is None
        assert [r.id for r in store.list_tokens(conn, None)] == [a, b, c]
        assert [r.id for r in store.list_tokens(conn, "salone-bella")] == [a, c]
        assert store.list_tokens(conn, "nobody") == []

    with engine.begin() as conn:
        assert store.revoke_token(conn, a, LATER) is True
        assert store.revoke_token(conn, a, LATER + timedelta(hours=1)) is False  # already
        assert store.revoke_token(conn, 999_999, LATER) is False  # unknown
    with engine.connect() as conn:
        revoked = store.find_token(conn, HASH_A)
        assert revoked is not None and revoked.revoked_at == LATER
        assert [r.revoked_at for r in store.list_tokens(conn, None)] == [LATER, None, None]


def test_a_token_hash_is_unique(engine: Engine) -> None:
    with engine.begin() as conn:
        store.insert_token(conn, "salone-bella", None, HASH_A, NOW)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        store.insert_token(conn, "another", None, HASH_A, NOW)


def test_webhook_secrets_are_inserted_then_replaced(engine: Engine) -> None:
    with engine.connect() as conn:
        assert store.get_webhook_secret(conn, "salone-bella", "stripe") is None
    with engine.begin() as conn:
        store.upsert_webhook_secret(conn, "salone-bella", "stripe", "whsec_one", NOW)
        store.upsert_webhook_secret(conn, "salone-bella", "shopify", "shpss_one", NOW)
        store.upsert_webhook_secret(conn, "another", "stripe", "whsec_other", NOW)
    with engine.begin() as conn:
        store.upsert_webhook_secret(conn, "salone-bella", "stripe", "whsec_two", LATER)
    with engine.connect() as conn:
        assert store.get_webhook_secret(conn, "salone-bella", "stripe") == "whsec_two"
        assert store.get_webhook_secret(conn, "salone-bella", "shopify") == "shpss_one"
        assert store.get_webhook_secret(conn, "another", "stripe") == "whsec_other"
        assert store.get_webhook_secret(conn, "another", "shopify") is None


def test_a_revoked_token_is_refused_once_the_cache_expires(
    engine: Engine, database_url: str
) -> None:
    token_id, token = create_token(engine, "salone-bella", "checkout", NOW)
    now = [0.0]
    reader = make_engine(database_url)
    auth = TokenAuthenticator(reader, cache_seconds=2.0, clock=lambda: now[0])
    assert auth.authenticate(token) == "salone-bella"
    assert revoke_token(engine, token_id, LATER)
    assert auth.authenticate(token) == "salone-bella"
    now[0] = 2.0
    assert auth.authenticate(token) is None
    reader.dispose()
