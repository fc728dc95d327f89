"""Objectives, key results, plan revisions and key-result counters.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shops",
        sa.Column("shop", sa.String(63), primary_key=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("revision_id", sa.Integer, nullable=False),
    )
    op.create_table(
        "objectives",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop", sa.String(63), nullable=False),
        sa.Column("key", sa.String(63), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_objectives_shop", "objectives", ["shop"])
    op.create_table(
        "key_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop", sa.String(63), nullable=False),
        sa.Column("objective_key", sa.String(63), nullable=False),
        sa.Column("key", sa.String(63), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("counting", sa.Text, nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_key_results_shop", "key_results", ["shop"])
    op.create_table(
        "plan_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop", sa.String(63), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
    )
    op.create_index("ix_plan_revisions_shop", "plan_revisions", ["shop"])
    op.create_table(
        "kr_day_totals",
        sa.Column("key_result_id", sa.Integer, primary_key=True),
        sa.Column("part", sa.String(16), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
    )
    op.create_table(
        "kr_distinct_values",
        sa.Column("key_result_id", sa.Integer, primary_key=True),
        sa.Column("part", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(255), primary_key=True),
    )
    op.create_table(
        "kr_series",
        sa.Column("key_result_id", sa.Integer, primary_key=True),
        sa.Column("part", sa.String(16), primary_key=True),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("level", sa.Float, nullable=True),
        sa.Column("level_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    for table in (
        "kr_series", "kr_distinct_values", "kr_day_totals", "plan_revisions",
        "key_results", "objectives", "shops",
    ):  # fmt: skip
        op.drop_table(table)
