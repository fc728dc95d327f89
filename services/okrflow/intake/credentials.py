"""Per-shop API tokens and platform webhook secrets: creating them, and checking them per request.

A token is `okr_` + 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored, so
the database cannot give a token back; the token is shown once, when it is created.
Webhook secrets are stored as they are: verifying a platform's HMAC signature needs the
secret itself, so whoever can read the database can read them, as with any credential store.

`TokenAuthenticator` and `WebhookSecrets` answer from a small in-memory cache: a verdict
(found or not) is reused for `cache_seconds`, so in steady state a request costs no query,
and a revoked token or a replaced secret takes effect within `cache_seconds`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import Engine

from okrflow.events.envelope import SHOP_PATTERN
from okrflow.store import credentials as store
from okrflow.store.credentials import TokenRow

__all__ = [
    "PLATFORMS",
    "TokenAuthenticator",
    "TokenRow",
    "WebhookSecrets",
    "create_token",
    "hash_token",
    "list_tokens",
    "new_token",
    "revoke_token",
    "set_webhook_secret",
]

TOKEN_PREFIX = "okr_"
PLATFORMS = frozenset({"shopify", "stripe"})
NAME_MAX = 200
CACHE_MAX_ENTRIES = 10_000

_SHOP = re.compile(SHOP_PATTERN)
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


def check_shop(shop: str) -> None:
    if not _SHOP.fullmatch(shop):
        raise ValueError(
            f"shop {shop!r}: must be 1-63 lowercase letters, digits or '-', "
            "starting with a letter or a digit"
        )


def check_name(name: str | None) -> None:
    if name is None:
        return
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise ValueError(
            f"name {name!r}: must be 1-{NAME_MAX} printable characters (no tabs or newlines)"
        )


def check_platform(platform: str) -> None:
    if platform not in PLATFORMS:
        raise ValueError(f"platform {platform!r}: must be one of {', '.join(sorted(PLATFORMS))}")


def check_secret(secret: str) -> None:
    if not secret:
        raise ValueError("the secret is empty")
    if secret != secret.strip():
        raise ValueError("the secret has whitespace before or after it")
    if not secret.isprintable():
        raise ValueError("the secret holds control characters (a line break?)")


def create_token(engine: Engine, shop: str, name: str | None, now: datetime) -> tuple[int, str]:
    """Create an active token for `shop`; returns (id, token). The token is not stored: only
    its hash is, so this is the one time it can be shown. ValueError for a bad shop or name."""
    check_shop(shop)
    check_name(name)
    token = new_token()
    with engine.begin() as conn:
        token_id = store.insert_token(conn, shop, name, hash_token(token), now)
    return token_id, token


def list_tokens(engine: Engine, shop: str | None = None) -> list[TokenRow]:
    """Every token (of `shop` if given), revoked ones included, by id; never a token or hash."""
    if shop is not None:
        check_shop(shop)
    with engine.connect() as conn:
        return store.list_tokens(conn, shop)


def revoke_token(engine: Engine, id: int, now: datetime) -> bool:
    """Revoke the token; False if it is unknown or already revoked. Authenticators refuse it
    within their `cache_seconds`."""
    with engine.begin() as conn:
        return store.revoke_token(conn, id, now)


def set_webhook_secret(
    engine: Engine, shop: str, platform: str, secret: str, now: datetime
) -> None:
    """Store (or replace) the secret `platform` signs the shop's webhooks with.

    ValueError for a bad shop, an unknown platform, or a secret that is empty, has whitespace
    around it or holds control characters (a line break included): such a secret is almost
    always a copy-and-paste accident, and would make every signature check fail.
    """
    check_shop(shop)
    check_platform(platform)
    check_secret(secret)
    with engine.begin() as conn:
        store.upsert_webhook_secret(conn, shop, platform, secret, now)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class VerdictCache(Generic[K, V]):
    """Lookups' answers, found (a value) or not (None), reused for `seconds`.

    At most `max_entries` are kept; the oldest is dropped first, so lookups of random keys
    (bad tokens) cannot grow memory without bound. Thread-safe; the lookup itself runs
    outside the lock, so a slow query does not hold up cached answers. An answer is reused
    until `seconds` after its lookup started, so a change made before a lookup started is
    seen by every caller within `seconds`. A lookup that raises caches nothing.
    """

    def __init__(
        self,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = CACHE_MAX_ENTRIES,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._seconds = seconds
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: K, lookup: Callable[[], V | None]) -> V | None:
        started = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and started < entry[0]:
                return entry[1]
        value = lookup()
        if self._seconds > 0:
            with self._lock:
                self._entries[key] = (started + self._seconds, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return value


class TokenAuthenticator:
    """Which shop a bearer token belongs to, for the HTTP intake.

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


class WebhookSecrets:
    """The secret a platform signs a shop's webhooks with, cached like `TokenAuthenticator`:
    a new or replaced secret is used within `cache_seconds`. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = CACHE_MAX_ENTRIES,
    ) -> None:
        self._engine = engine
        self._cache: VerdictCache[tuple[str, str], str] = VerdictCache(
            cache_seconds, clock, max_entries
        )

    def get(self, shop: str, platform: str) -> str | None:
        """The secret; None if none is set (or the shop or platform is not a valid one)."""
        if platform not in PLATFORMS or not _SHOP.fullmatch(shop):
            return None
        return self._cache.get((shop, platform), lambda: self._lookup(shop, platform))

    def _lookup(self, shop: str, platform: str) -> str | None:
        with self._engine.connect() as conn:
            return store.get_webhook_secret(conn, shop, platform)
