"""The SQL store: tables, engine, migrations and the batch repository."""
