"""Backfill jobs and their cuts: written by `apply` in the transaction that activates a key
result whose period has begun (docs/design/history-and-backfill.md 1.2-1.3).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backfill_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop", sa.String(63), nullable=False),
        sa.Column("revision_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skipped_events", sa.BigInteger, nullable=False),
        sa.Column("lost_messages", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_backfill_jobs_shop", "backfill_jobs", ["shop"])
    op.create_table(
        "backfill_partitions",
        sa.Column("job_id", sa.Integer, primary_key=True),
        sa.Column("kafka_partition", sa.Integer, primary_key=True),
        sa.Column("cut_offset", sa.BigInteger, nullable=False),
        sa.Column("next_offset", sa.BigInteger, nullable=True),
        sa.Column("freeze_offset", sa.BigInteger, nullable=True),
    )
    op.add_column("key_results", sa.Column("backfill_job_id", sa.Integer, nullable=True))
    op.create_index("ix_key_results_backfill_job_id", "key_results", ["backfill_job_id"])


def downgrade() -> None:
    op.drop_index("ix_key_results_backfill_job_id", "key_results")
    with op.batch_alter_table("key_results") as batch:
        batch.drop_column("backfill_job_id")
    op.drop_table("backfill_partitions")
    op.drop_index("ix_backfill_jobs_shop", "backfill_jobs")
    op.drop_table("backfill_jobs")
