"""Creating engines with the settings each database needs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean the psycopg 3 driver here."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, writer: bool = False) -> Engine:
    """An engine for `url`.

    SQLite files get WAL and a busy timeout so workers, `apply` and the exporter can share one
    file. A `writer` engine starts SQLite transactions with BEGIN IMMEDIATE: a transaction that
    reads, then writes, must hold the write lock from the start, or a concurrent writer makes
    it fail instead of wait.
    """
    url = normalise_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30})
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
