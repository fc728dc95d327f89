"""HTTP intake credentials: API tokens (hashed) and platform webhook secrets.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop", sa.String(63), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_tokens_shop", "api_tokens", ["shop"])
    op.create_table(
        "webhook_secrets",
        sa.Column("shop", sa.String(63), primary_key=True),
        sa.Column("platform", sa.String(32), primary_key=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_secrets")
    op.drop_table("api_tokens")
