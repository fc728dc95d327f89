"""HTTP intake credentials in the database, SQL only: API tokens and webhook secrets.

Tokens are stored as the hex SHA-256 of the token (okrflow.access.tokens hashes them);
webhook secrets are stored as they are, since verifying a signature needs the secret itself.
Times are written as aware UTC and read back as aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from okrflow.store.dialect import as_utc, upsert
from okrflow.store.tables import api_tokens, webhook_secrets


@dataclass(frozen=True)
class TokenRow:
    """One API token as stored, without its hash."""

    id: int
    shop: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


_TOKEN_COLUMNS = (
    api_tokens.c.id,
    api_tokens.c.shop,
    api_tokens.c.name,
    api_tokens.c.created_at,
    api_tokens.c.revoked_at,
)


def _token_row(row: Any) -> TokenRow:
    return TokenRow(
        id=row.id,
        shop=row.shop,
        name=row.name,
        created_at=as_utc(row.created_at),
        revoked_at=None if row.revoked_at is None else as_utc(row.revoked_at),
    )


def insert_token(
    conn: Connection, shop: str, name: str | None, token_hash: str, now: datetime
) -> int:
    """Insert an active token; returns its id."""
    result = conn.execute(
        api_tokens.insert().values(
            shop=shop, name=name, token_hash=token_hash, created_at=as_utc(now), revoked_at=None
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def find_token(conn: Connection, token_hash: str) -> TokenRow | None:
    """The token with this hash, revoked or not; None if there is none."""
    row = conn.execute(
        select(*_TOKEN_COLUMNS).where(api_tokens.c.token_hash == token_hash)
    ).one_or_none()
    return None if row is None else _token_row(row)


def list_tokens(conn: Connection, shop: str | None) -> list[TokenRow]:
    """Every token (of `shop` if given), revoked ones included, by id."""
    query = select(*_TOKEN_COLUMNS).order_by(api_tokens.c.id)
    if shop is not None:
        query = query.where(api_tokens.c.shop == shop)
    return [_token_row(row) for row in conn.execute(query)]


def revoke_token(conn: Connection, id: int, now: datetime) -> bool:
    """Mark the token revoked; False if there is no such token or it was already revoked."""
    result = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=as_utc(now))
    )
    return result.rowcount == 1


def upsert_webhook_secret(
    conn: Connection, shop: str, platform: str, secret: str, now: datetime
) -> None:
    """Store the shop's secret for `platform`, replacing the one stored before."""
    stmt = upsert(conn, webhook_secrets).values(
        shop=shop, platform=platform, secret=secret, updated_at=as_utc(now)
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[webhook_secrets.c.shop, webhook_secrets.c.platform],
            set_={"secret": stmt.excluded.secret, "updated_at": stmt.excluded.updated_at},
        )
    )


def get_webhook_secret(conn: Connection, shop: str, platform: str) -> str | None:
    """The shop's secret for `platform`; None if none was set."""
    secret: str | None = conn.execute(
        select(webhook_secrets.c.secret).where(
            webhook_secrets.c.shop == shop, webhook_secrets.c.platform == platform
        )
    ).scalar_one_or_none()
    return secret
