"""claim_event_ids on real SQLite and PostgreSQL: the plain-INSERT path (no id seen before)
and the fallback (some seen) store the same rows, report exactly the ids seen, and leave a
failed attempt without trace."""

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from okrflow.store.batches import claim_event_ids, prune_seen_events
from okrflow.store.engine import make_engine
from okrflow.store.schema import ensure_schema
from okrflow.store.tables import seen_events

# An offset other than UTC: both paths must store the same UTC instant.
FIRST = datetime(2026, 3, 1, 10, 11, 12, 345678, tzinfo=timezone(timedelta(hours=1)))
LATER = FIRST + timedelta(hours=2)


def test_new_ids_then_some_seen_store_the_same_rows(database_url: str) -> None:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    with engine.begin() as conn:
        assert claim_event_ids(conn, [("s", "a"), ("s", "b"), ("t", "a")], FIRST) == set()
    with engine.begin() as conn:
        # "b" and ("t", "a") were seen; ("s", "c") and ("t", "b") are new.
        seen = claim_event_ids(conn, [("s", "c"), ("s", "b"), ("t", "b"), ("t", "a")], LATER)
        assert seen == {1, 3}
    with engine.connect() as conn:
        # Stored in one form whichever path wrote it (SQLite keeps text: compared as text).
        forms = {
            (type(at).__name__, len(str(at)))
            for (at,) in conn.exec_driver_sql("SELECT seen_at FROM seen_events")
        }
        assert len(forms) == 1, forms
        rows = {
            (shop, event_id): at if at.tzinfo else at.replace(tzinfo=UTC)
            for shop, event_id, at in conn.execute(select(seen_events))
        }
    assert rows == {
        ("s", "a"): FIRST, ("s", "b"): FIRST, ("t", "a"): FIRST,
        ("s", "c"): LATER, ("t", "b"): LATER,
    }  # fmt: skip
    # Both paths stored a time the dedupe window's prune compares correctly.
    assert prune_seen_events(engine, FIRST + timedelta(hours=1), 60) == 3
    assert prune_seen_events(engine, LATER + timedelta(hours=1), 60) == 2
    engine.dispose()


def test_the_helpers_json_form_claims_as_the_pairs_do(database_url: str) -> None:
    engine = make_engine(database_url, writer=True)
    ensure_schema(engine)
    with engine.begin() as conn:
        assert claim_event_ids(conn, b'[["s","a"],["s","b"]]', FIRST) == set()
        assert claim_event_ids(conn, b"[]", FIRST) == set()
    with engine.begin() as conn:
        assert claim_event_ids(conn, b'[["s","c"],["s","b"],["t","a"]]', LATER) == {1}
    with engine.connect() as conn:
        stored = set(conn.execute(select(seen_events.c.shop, seen_events.c.event_id)))
    assert stored == {("s", "a"), ("s", "b"), ("s", "c"), ("t", "a")}
    engine.dispose()
