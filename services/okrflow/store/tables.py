"""SQLAlchemy table definitions; the migrations under `migrations/` create exactly these."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table

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

# (shop, event id) already counted: absorbs producer retries within the dedupe window.
seen_events = Table(
    "seen_events",
    metadata,
    Column("shop", String(63), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False, index=True),
)
