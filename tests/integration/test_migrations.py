"""The Alembic migrations create exactly the tables okrflow's code describes."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from okrflow.store.engine import make_engine
from okrflow.store.schema import upgrade
from okrflow.store.tables import metadata


def test_migrations_match_the_table_definitions(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
