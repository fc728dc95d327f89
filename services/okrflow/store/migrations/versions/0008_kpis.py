"""KPIs beside key results (docs/design/history-and-backfill.md section 4).

A KPI is a `key_results` row with `kind = 'kpi'` (and `objective_key = ''`), so it counts
through the same series, day totals and backfill. A count_distinct KPI over a rolling window
needs every day a value was seen, not only its first: `kpi_distinct_days`.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "key_results",
        sa.Column("kind", sa.String(8), nullable=False, server_default="kr"),
    )
    op.create_table(
        "kpi_distinct_days",
        sa.Column("key_result_id", sa.Integer, primary_key=True),
        sa.Column("part", sa.String(16), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("value", sa.String(255), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("kpi_distinct_days")
    with op.batch_alter_table("key_results") as batch:
        batch.drop_column("kind")
