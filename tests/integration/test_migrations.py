"""The Alembic migrations create exactly the tables okrflow's code describes."""

from datetime import UTC, date, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from okrflow.domain.history import state_as_of
from okrflow.store.engine import make_engine
from okrflow.store.schema import MIGRATIONS, upgrade
from okrflow.store.series_reads import read_series_rows, read_series_states
from okrflow.store.tables import metadata


def test_migrations_match_the_table_definitions(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def _migrate(engine: Engine, to: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, to)


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_0004_day_history_upgrades_old_counters_and_downgrades(database_url: str) -> None:
    """Counters written before 0004 keep their values: a level without per-day levels comes
    from kr_series (now, and as of any day after it was reached); downgrading drops only the
    new columns."""
    engine = make_engine(database_url)
    _migrate(engine, "0003")
    reached = datetime(2026, 2, 10, 9, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO key_results (id, shop, objective_key, key, position, definition, counting)"
            " VALUES (1, 's', 'o', 'k', 0, '{}', '{}')"
        ))  # fmt: skip
        conn.execute(text("INSERT INTO kr_series VALUES (1, 'value', 3, 42.0, :at, :at)"),
                     {"at": reached})  # fmt: skip
        conn.execute(text("INSERT INTO kr_day_totals VALUES (1, 'value', :d, 3, 0.0)"),
                     {"d": date(2026, 2, 10)})  # fmt: skip
        conn.execute(text("INSERT INTO kr_distinct_values VALUES (1, 'value', '\"c1\"')"))
    upgrade(engine)
    assert {"level", "level_at", "last_event_at"} <= _columns(engine, "kr_day_totals")
    assert "first_day" in _columns(engine, "kr_distinct_values")
    with engine.connect() as conn:
        states = read_series_states(conn, [1])
        rows = read_series_rows(conn, [1])[1, "value"]
    assert (states[1]["value"].level, states[1]["value"].events) == (42.0, 3)
    assert state_as_of("max", rows, date(2026, 2, 10), "Europe/Rome").level == 42.0
    assert state_as_of("max", rows, date(2026, 2, 9), "Europe/Rome").level is None
    _migrate(engine, "0003", down=True)
    assert "level" not in _columns(engine, "kr_day_totals")
    assert "first_day" not in _columns(engine, "kr_distinct_values")
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT events, total FROM kr_day_totals")).all()
    assert [tuple(r) for r in kept] == [(3, 0.0)]
    upgrade(engine)
    engine.dispose()
