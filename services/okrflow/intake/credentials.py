"""Per-shop API tokens and platform webhook secrets: creating them, and checking them per request.

A token is `okr_` + 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored, so
the database cannot give a token back; the token is shown once, when it is created.
Webhook secrets are stored as they are: verifying a platform's HMAC signature needs the
secret itself, so whoever can read the database can read them, as with any credential store.

Tokens are checked by `okrflow.access.tokens.TokenAuthenticator` (the pages check them too).
`WebhookSecrets` answers from the same kind of cache (`okrflow.access.verdicts`): a secret
(or its absence) is reused for `cache_seconds`, so a replaced secret takes effect within it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from okrflow.access.tokens import hash_token, new_token
from okrflow.access.verdicts import CACHE_MAX_ENTRIES, VerdictCache
from okrflow.events.envelope import SHOP_PATTERN
from okrflow.store import credentials as store
from okrflow.store.credentials import TokenRow

__all__ = [
    "PLATFORMS",
    "TokenRow",
    "WebhookSecrets",
    "create_token",
    "list_tokens",
    "revoke_token",
    "set_webhook_secret",
]

PLATFORMS = frozenset({"shopify", "stripe"})
NAME_MAX = 200

_SHOP = re.compile(SHOP_PATTERN)


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
