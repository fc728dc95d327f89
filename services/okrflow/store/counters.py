"""Writing key-result series deltas, and reading them back as domain state."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime

from sqlalchemy import Connection, bindparam, select, tuple_, update

from okrflow.domain.progress import SeriesState
from okrflow.domain.series import SeriesDelta, SeriesKey, merge_level
from okrflow.store.dialect import insert_new_rows, upsert
from okrflow.store.tables import key_results, kr_day_totals, kr_distinct_values, kr_series


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; SQLite hands back naive datetimes, which okrflow always writes as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def write_series_deltas(conn: Connection, deltas: dict[SeriesKey, SeriesDelta]) -> None:
    """Add one batch's deltas to the stored series. Call inside the batch transaction."""
    if not deltas:
        return
    day_totals: dict[tuple[int, str, date], list[float]] = {}
    for (kr_id, part), delta in deltas.items():
        for day, (events, total) in delta.days.items():
            day_totals[kr_id, part, day] = [events, total]
    distinct_rows = [
        {"key_result_id": kr_id, "part": part, "value": value}
        for (kr_id, part), delta in deltas.items()
        for value in delta.distinct
    ]
    for kr_id, part, value in insert_new_rows(
        conn, kr_distinct_values, distinct_rows, ["key_result_id", "part", "value"]
    ):
        bucket = day_totals.setdefault((kr_id, part, deltas[kr_id, part].distinct[value]), [0, 0.0])
        bucket[0] += 1
        bucket[1] += 1
    if day_totals:
        stmt = upsert(conn, kr_day_totals)
        stmt = stmt.on_conflict_do_update(
            index_elements=[
                kr_day_totals.c.key_result_id,
                kr_day_totals.c.part,
                kr_day_totals.c.day,
            ],
            set_={
                "events": kr_day_totals.c.events + stmt.excluded.events,
                "total": kr_day_totals.c.total + stmt.excluded.total,
            },
        )
        conn.execute(
            stmt,
            [
                {"key_result_id": k, "part": p, "day": d, "events": int(v[0]), "total": v[1]}
                for (k, p, d), v in sorted(day_totals.items())
            ],
        )
    _merge_series(conn, deltas)


def _merge_series(conn: Connection, deltas: dict[SeriesKey, SeriesDelta]) -> None:
    keys = sorted(deltas)
    conn.execute(
        upsert(conn, kr_series).on_conflict_do_nothing(),
        [{"key_result_id": k, "part": p, "events": 0} for k, p in keys],
    )
    query = select(kr_series).where(tuple_(kr_series.c.key_result_id, kr_series.c.part).in_(keys))
    if conn.dialect.name == "postgresql":
        # Two workers on different partitions may move the same key result: serialise them.
        query = query.with_for_update()
    rows = []
    for row in conn.execute(query):
        delta = deltas[row.key_result_id, row.part]
        level, level_at = row.level, as_utc(row.level_at) if row.level_at else None
        if delta.level is not None and delta.level_at is not None:
            level, level_at = merge_level(
                delta.aggregate, level, level_at, delta.level, delta.level_at
            )
        last = row.last_event_at and as_utc(row.last_event_at)
        if delta.last_event_at is not None and (last is None or delta.last_event_at > last):
            last = delta.last_event_at
        rows.append({
            "b_id": row.key_result_id, "b_part": row.part, "events": row.events + delta.events,
            "level": level, "level_at": level_at and as_utc(level_at), "last_event_at": last and as_utc(last),
        })  # fmt: skip
    conn.execute(
        update(kr_series)
        .where(kr_series.c.key_result_id == bindparam("b_id"), kr_series.c.part == bindparam("b_part"))
        .values(events=bindparam("events"), level=bindparam("level"), level_at=bindparam("level_at"),
                last_event_at=bindparam("last_event_at")),
        rows,
    )  # fmt: skip


# Built once: building a statement per call leaves reference cycles for the collector.
_DAY_TOTALS_IN_FORCE = (
    select(kr_day_totals.c.key_result_id, kr_day_totals.c.part, kr_day_totals.c.day,
           kr_day_totals.c.events, kr_day_totals.c.total)
    .join(key_results, key_results.c.id == kr_day_totals.c.key_result_id)
    .where(key_results.c.retired_at.is_(None))
)  # fmt: skip
_SERIES_IN_FORCE = (
    select(kr_series.c.key_result_id, kr_series.c.part, kr_series.c.events, kr_series.c.level,
           kr_series.c.last_event_at)
    .join(key_results, key_results.c.id == kr_series.c.key_result_id)
    .where(key_results.c.retired_at.is_(None))
)  # fmt: skip


def read_series_states(
    conn: Connection, key_result_ids: Iterable[int], checkpoint: Callable[[], None] = lambda: None
) -> dict[int, dict[str, SeriesState]]:
    """What has been counted for each key result, by series part. `checkpoint` is called
    every 250 rows (the exporter lets scrapes go first there).

    Reads the series of every key result in force (joined, not thousands of bound ids) and
    keeps the ones asked for; rows are read as plain tuples (the exporter reads them all at
    every refresh).
    """
    wanted = set(key_result_ids)
    if not wanted:
        return {}
    day_rows = conn.execute(_DAY_TOTALS_IN_FORCE)
    days: dict[tuple[int, str], list[tuple[date, int, float]]] = {}
    for n, (kr_id, part, day, events, total) in enumerate(day_rows):
        if n % 250 == 0:
            checkpoint()
        if kr_id in wanted:
            days.setdefault((kr_id, part), []).append((day, int(events), float(total)))
    series_rows = conn.execute(_SERIES_IN_FORCE)
    states: dict[int, dict[str, SeriesState]] = {}
    for n, (kr_id, part, events, level, last_event_at) in enumerate(series_rows):
        if n % 250 == 0:
            checkpoint()
        if kr_id not in wanted:
            continue
        buckets = days.get((kr_id, part), [])
        states.setdefault(kr_id, {})[part] = SeriesState(
            events=int(events),
            total=sum(t for _, _, t in buckets),
            level=level,
            day_counts={d: e for d, e, _ in buckets},
            last_event_at=as_utc(last_event_at) if last_event_at else None,
        )
    return states
