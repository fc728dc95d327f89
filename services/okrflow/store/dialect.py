"""What differs between the two databases okrflow speaks (SQLite, PostgreSQL): INSERT ... ON
CONFLICT, bulk rows as one JSON document, values handed to the driver, datetimes read back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Column, Connection, Table, TextClause, TextualSelect, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite

_T = TypeVar("_T")


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; SQLite hands back naive datetimes, which okrflow always writes as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def upsert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An `insert` for `table` that offers `on_conflict_do_update/nothing` on this connection."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"okrflow supports SQLite and PostgreSQL, not {conn.dialect.name}")


def recordset(table: Table, rows: Sequence[Mapping[str, object]]) -> TextualSelect:
    """PostgreSQL: a SELECT of `rows` (dicts of `table`'s column names) from one JSON
    document encoded by msgspec and parsed by the server (json_populate_recordset), for
    INSERT ... SELECT: one parameter however many rows."""
    columns = list(rows[0])
    source: TextClause = text(
        f"SELECT {', '.join(columns)} FROM json_populate_recordset(NULL::{table.name}, CAST(:rows AS json))"
    ).bindparams(bindparam("rows", msgspec.json.encode(rows).decode()))
    return source.columns(*(table.c[c] for c in columns))


def insert_new_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, object]], key: list[str]
) -> list[tuple[Any, ...]]:  # Any: the `key` columns' values, typed as in `table`
    """INSERT the rows, skipping those whose `key` columns already exist; returns the `key`
    values of the rows actually inserted.

    PostgreSQL gets one statement over one JSON document of all rows, encoded by msgspec and
    parsed by the server: psycopg would otherwise build and parse a VALUES list of megabytes,
    or escape text arrays character by character. SQLite gets a multi-row VALUES insert.
    """
    if not rows:
        return []
    columns = list(rows[0])
    if conn.dialect.name == "postgresql":
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"SELECT {', '.join(columns)} FROM json_populate_recordset(NULL::{table.name}, %(rows)s) "
            f"ON CONFLICT DO NOTHING RETURNING {', '.join(key)}"
        )
        return [
            tuple(r)
            for r in conn.exec_driver_sql(sql, {"rows": msgspec.json.encode(rows).decode()}).all()
        ]
    stmt = upsert(conn, table).on_conflict_do_nothing().returning(*(table.c[k] for k in key))
    return [tuple(r) for r in conn.execute(stmt, rows).all()]


def driver_value(conn: Connection, column: Column[_T]) -> Callable[[_T], object]:
    """What SQLAlchemy would hand the driver for a value of `column` (SQLite: a date or
    datetime as text), for SQL sent through the driver's executemany."""
    processor = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return processor if processor is not None else lambda value: value
