"""Per-shop API tokens: their form, their hash, and which shop a token belongs to.

A token is `okr_` + 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored, so
the database cannot give a token back. The intake (bearer tokens, `okrflow tokens`) and the
exporter's pages (`?token=`, `OKRFLOW_PAGES_REQUIRE_TOKEN`) check tokens here; creating and
revoking them is `okrflow.intake.credentials`.

`TokenAuthenticator` answers from a small in-memory cache (`access.verdicts`): a verdict
(found or not) is reused for `cache_seconds`, so in steady state a request costs no query,
and a revoked token is refused within `cache_seconds`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable

from sqlalchemy import Engine

from okrflow.access.verdicts import CACHE_MAX_ENTRIES, VerdictCache
from okrflow.store import credentials as store

TOKEN_PREFIX = "okr_"
# What new_token() makes: anything else is refused without a query (and is not cached).
_TOKEN_SHAPE = re.compile(r"okr_[A-Za-z0-9_-]{43}")


def new_token() -> str:
    """A new random token: `okr_` + 32 random bytes, URL-safe base64 (43 characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The hex SHA-256 of `token`, as stored in `api_tokens.token_hash`.

    A plain, unsalted hash is the standard choice for tokens of 256 random bits: salting and
    slow hashes (bcrypt, scrypt, argon2) protect low-entropy passwords from guessing, and
    nobody can guess 2^256 values. An unsalted hash also lets a request find its token with
    one indexed lookup. Looking up by hash also makes the comparison's timing harmless: it
    reveals at most a prefix of a hash, not of a token.
    """
    return hashlib.sha256(token.encode()).hexdigest()


class TokenAuthenticator:
    """Which shop a token belongs to, for the HTTP intake and the exporter's pages.

    `authenticate` is called from a thread pool: it is thread-safe, and it queries the
    database only when its cache has no fresh verdict for the token. A revoked token is
    refused within `cache_seconds`; an unknown token is remembered as unknown for as long.
    Database errors propagate (the caller answers 503, say): nothing is cached then.
    Give it a reading engine (`make_engine(url)`): on SQLite, a writer engine would take
    the write lock for every lookup.
    """

    def __init__(
        self,
        engine: Engine,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = CACHE_MAX_ENTRIES,
    ) -> None:
        self._engine = engine
        # Keyed by the token's hash: the cache holds no tokens.
        self._cache: VerdictCache[str, str] = VerdictCache(cache_seconds, clock, max_entries)

    def authenticate(self, token: str) -> str | None:
        """The token's shop; None when the token is malformed, unknown or revoked."""
        if not _TOKEN_SHAPE.fullmatch(token):
            return None
        token_hash = hash_token(token)
        return self._cache.get(token_hash, lambda: self._lookup(token_hash))

    def _lookup(self, token_hash: str) -> str | None:
        with self._engine.connect() as conn:
            row = store.find_token(conn, token_hash)
        if row is None or row.revoked_at is not None:
            return None
        return row.shop
