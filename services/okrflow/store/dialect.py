"""The two INSERT ... ON CONFLICT dialects okrflow speaks (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(conn: Connection, table: Table) -> Any:
    """An `insert` for `table` that offers `on_conflict_do_update/nothing` on this connection."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"okrflow supports SQLite and PostgreSQL, not {conn.dialect.name}")
