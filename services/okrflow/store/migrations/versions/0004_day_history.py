"""Per-day history of every aggregate: the day's level (latest / max / min) and newest event
time in kr_day_totals, and each distinct value's earliest local day.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("kr_day_totals", sa.Column("level", sa.Float, nullable=True))
    op.add_column("kr_day_totals", sa.Column("level_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "kr_day_totals", sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("kr_distinct_values", sa.Column("first_day", sa.Date, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kr_distinct_values") as batch:
        batch.drop_column("first_day")
    with op.batch_alter_table("kr_day_totals") as batch:
        batch.drop_column("last_event_at")
        batch.drop_column("level_at")
        batch.drop_column("level")
