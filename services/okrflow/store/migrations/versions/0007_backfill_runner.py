"""The backfill runner's dedupe table, and baselines measured from data (docs/design/
history-and-backfill.md 1.3, 1.5 and 3.3).

`backfill_seen` holds the event ids a backfill job has counted inside its scanned range (the
live worker's `seen_events` already holds every id below the cut). The job's rows are deleted
when it finishes. `key_results` gains the measured baseline, frozen once the backfill is done.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backfill_seen",
        sa.Column("job_id", sa.Integer, primary_key=True),
        sa.Column("shop", sa.String(63), primary_key=True),
        sa.Column("event_id", sa.String(255), primary_key=True),
    )
    op.add_column("key_results", sa.Column("measured_baseline", sa.Float, nullable=True))
    op.add_column("key_results", sa.Column("baseline_state", sa.String(8), nullable=True))
    op.add_column(
        "key_results",
        sa.Column("baseline_measured_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("key_results") as batch:
        batch.drop_column("baseline_measured_at")
        batch.drop_column("baseline_state")
        batch.drop_column("measured_baseline")
    op.drop_table("backfill_seen")
