"""The plan clock: one row with the newest plan revision, which batch transactions read under
a shared lock and `apply` advances under an exclusive one (docs/design/history-and-backfill.md
section 1.1). Seeded with the newest applied revision.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_clock",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO plan_clock (id, revision) SELECT 1, coalesce(max(id), 0) FROM plan_revisions"
    )


def downgrade() -> None:
    op.drop_table("plan_clock")
