"""SQLAlchemy table definitions; the migrations under `migrations/` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

# Valid events counted per shop and type: the KPI `okr_shop_events_total`.
shop_event_totals = Table(
    "shop_event_totals",
    metadata,
    Column("shop", String(63), primary_key=True),
    Column("event_type", String(255), primary_key=True),
    Column("events", BigInteger, nullable=False),
    Column("last_event_at", DateTime(timezone=True), nullable=True),
)

# Next Kafka offset to apply per partition, written in the same transaction as the counters:
# this is what makes a replay after a crash or a rebalance harmless.
applied_offsets = Table(
    "applied_offsets",
    metadata,
    Column("topic", String(249), primary_key=True),
    Column("kafka_partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)

# The plan clock: one row (id 1) holding the newest plan revision. A batch transaction reads
# it under a shared row lock (PostgreSQL FOR KEY SHARE) before counting; `apply` takes it
# FOR UPDATE and advances it, so no batch counts across an apply with the older plan.
plan_clock = Table(
    "plan_clock",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("revision", BigInteger, nullable=False),
)

# (shop, event id) already counted: absorbs producer retries within the dedupe window.
seen_events = Table(
    "seen_events",
    metadata,
    Column("shop", String(63), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False, index=True),
)

# --- objectives and key results as applied by `okrflow apply` --------------------------------

# One row per shop: its time zone and the plan revision in force.
shops = Table(
    "shops",
    metadata,
    Column("shop", String(63), primary_key=True),
    Column("timezone", String(64), nullable=False),
    Column("revision_id", Integer, nullable=False),
)

# Objectives in force (retired_at NULL) and retired ones; `definition` is the objective's
# schema-valid data from okrs.yaml, without its key results.
objectives = Table(
    "objectives",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(63), nullable=False, index=True),
    Column("key", String(63), nullable=False),
    Column("position", Integer, nullable=False),
    Column("definition", Text, nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=True),
)

# Key results; a changed metric gets a new row (and so fresh counters), the old one is retired.
key_results = Table(
    "key_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(63), nullable=False, index=True),
    Column("objective_key", String(63), nullable=False),
    Column("key", String(63), nullable=False),
    Column("position", Integer, nullable=False),
    Column("definition", Text, nullable=False),
    Column("counting", Text, nullable=False),  # what decides which events count: metric, time zone
    Column("retired_at", DateTime(timezone=True), nullable=True),
    # The backfill job that counts this key result's events from before its activation.
    Column("backfill_job_id", Integer, nullable=True, index=True),
    # A baseline measured from data (`baseline: {from: history | previous_period}`): the
    # value, `waiting` until the backfill is done and the window over, then `measured`.
    Column("measured_baseline", Float, nullable=True),
    Column("baseline_state", String(8), nullable=True),
    Column("baseline_measured_at", DateTime(timezone=True), nullable=True),
    # 'kr' for a key result, 'kpi' for a KPI (its objective_key is '').
    Column("kind", String(8), nullable=False, server_default="kr"),
)

# A backfill: one per (apply, shop) that activated key results whose period had begun. State
# pending -> running -> done (or cancelled, failed); owner and lease_until fence runners.
backfill_jobs = Table(
    "backfill_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(63), nullable=False, index=True),
    Column("revision_id", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("owner", String(255), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("skipped_events", BigInteger, nullable=False),
    Column("lost_messages", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
)

# Per job and partition: the cut (the live worker counts from it on) and the scan's progress
# (next_offset NULL: not started, the log's start).
backfill_partitions = Table(
    "backfill_partitions",
    metadata,
    Column("job_id", Integer, primary_key=True),
    Column("kafka_partition", Integer, primary_key=True),
    Column("cut_offset", BigInteger, nullable=False),
    Column("next_offset", BigInteger, nullable=True),
    Column("freeze_offset", BigInteger, nullable=True),
)

# The event ids a backfill job has counted inside its scanned range; deleted when it is done.
backfill_seen = Table(
    "backfill_seen",
    metadata,
    Column("job_id", Integer, primary_key=True),
    Column("shop", String(63), primary_key=True),
    Column("event_id", String(255), primary_key=True),
)

# Every apply that changed something, for audit: when, what changed, and the file.
plan_revisions = Table(
    "plan_revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(63), nullable=False, index=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("changes", Text, nullable=False),
    Column("source", Text, nullable=False),
)

# --- key-result counters ---------------------------------------------------------------------

# Per key-result series (part: value | numerator | denominator) and shop-local day: events and
# total (count_distinct: the values first seen that day), the day's level for latest / max /
# min and when it was reached, the day's newest event time (NULL in rows from before 0004).
kr_day_totals = Table(
    "kr_day_totals",
    metadata,
    Column("key_result_id", Integer, primary_key=True),
    Column("part", String(16), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("events", BigInteger, nullable=False),
    Column("total", Float, nullable=False),
    Column("level", Float, nullable=True),
    Column("level_at", DateTime(timezone=True), nullable=True),
    Column("last_event_at", DateTime(timezone=True), nullable=True),
)

# Values already seen by a count_distinct series, with the earliest local day of an event
# carrying each (NULL for values counted before 0004: they never move).
kr_distinct_values = Table(
    "kr_distinct_values",
    metadata,
    Column("key_result_id", Integer, primary_key=True),
    Column("part", String(16), primary_key=True),
    Column("value", String(255), primary_key=True),
    Column("first_day", Date, nullable=True),
)

# Per KPI series, every local day a count_distinct value was seen (a rolling window needs
# them all, not only the first).
kpi_distinct_days = Table(
    "kpi_distinct_days",
    metadata,
    Column("key_result_id", Integer, primary_key=True),
    Column("part", String(16), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("value", String(255), primary_key=True),
)

# Per series: events counted, the level (latest/max/min) and when the last event happened.
kr_series = Table(
    "kr_series",
    metadata,
    Column("key_result_id", Integer, primary_key=True),
    Column("part", String(16), primary_key=True),
    Column("events", BigInteger, nullable=False),
    Column("level", Float, nullable=True),
    Column("level_at", DateTime(timezone=True), nullable=True),
    Column("last_event_at", DateTime(timezone=True), nullable=True),
)

# --- HTTP intake credentials (okrflow tokens, okrflow webhooks) --------------------------------

# Bearer tokens for POSTing events: only the SHA-256 of each token is kept (docs/intake.md).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop", String(63), nullable=False, index=True),
    Column("name", String(200), nullable=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # hex SHA-256
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Per shop and platform (shopify, stripe), the secret its webhooks are signed with. Held as
# is: verifying an HMAC needs the secret itself, so the database is a credential store.
webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("shop", String(63), primary_key=True),
    Column("platform", String(32), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
