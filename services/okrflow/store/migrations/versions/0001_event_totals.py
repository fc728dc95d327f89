"""Event totals per shop and type, applied offsets, seen event ids.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_event_totals",
        sa.Column("shop", sa.String(63), primary_key=True),
        sa.Column("event_type", sa.String(255), primary_key=True),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "applied_offsets",
        sa.Column("topic", sa.String(249), primary_key=True),
        sa.Column("kafka_partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "seen_events",
        sa.Column("shop", sa.String(63), primary_key=True),
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_seen_events_seen_at", "seen_events", ["seen_at"])


def downgrade() -> None:
    op.drop_table("seen_events")
    op.drop_table("applied_offsets")
    op.drop_table("shop_event_totals")
