"""Accounts: server-side web sessions (revoked on logout, idle and absolute timeouts).

Revision ID: 0004_web_sessions
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_web_sessions"
down_revision = "0001_foundation"
branch_labels = ("accounts",)


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("web_sessions")
