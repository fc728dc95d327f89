"""Creating engines with the settings each database needs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean the psycopg 3 driver here."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(
    url: str | URL, *, writer: bool = False, connect_args: Mapping[str, object] | None = None
) -> Engine:
    """An engine for `url`.

    SQLite files get WAL and a busy timeout so workers, `apply` and the exporter can share one
    file. A `writer` engine starts SQLite transactions with BEGIN IMMEDIATE: a transaction that
    reads, then writes, must hold the write lock from the start, or a concurrent writer makes
    it fail instead of wait.
    """
    if isinstance(url, str):
        url = make_url(normalise_url(url))
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, connect_args=dict(connect_args or {}))
    engine = create_engine(url, connect_args={"timeout": 30, **(connect_args or {})})
    event.listen(engine, "connect", _sqlite_pragmas)
    if writer:
        event.listen(engine, "connect", _sqlite_manual_transactions)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk (the WAL is synced) before it returns, so a batch whose Kafka
    # offsets are committed next survives a power loss. NORMAL could lose the last commits.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_manual_transactions(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would emit a deferred BEGIN).
    dbapi_conn.isolation_level = None


def _sqlite_begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class DatabaseMissing(RuntimeError):
    """A read-only command was pointed at a SQLite file that does not exist."""


def open_existing(url: str, *, connect_timeout: float = 10) -> Engine:
    """An engine for a database that must already exist: it never creates one.

    A SQLite file is checked first (DatabaseMissing if absent) and then opened through
    sqlite's `mode=rw` URI, which refuses to create the file even if it vanished in between.
    (Not `mode=ro`: a WAL database opened read-only cannot create its `-shm` file when no
    writer has it open.) A server database is asked with a connect timeout, so an unreachable
    one fails within `connect_timeout` seconds, on first use, with SQLAlchemy's
    OperationalError. The schema is not looked at: see `okrflow.store.schema.require_schema`.
    """
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite":
        return make_engine(url, connect_args={"connect_timeout": max(1, round(connect_timeout))})
    database = parsed.database or ""
    if database in ("", ":memory:") or parsed.query.get("uri") == "true":
        return make_engine(url)  # in memory (always empty), or the caller's own URI
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise DatabaseMissing(f"no SQLite database at {path}")
    return make_engine(
        parsed.set(database=f"{path.as_uri()}?mode=rw").update_query_dict({"uri": "true"})
    )
