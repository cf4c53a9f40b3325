"""Liveness: `liveness_face_hashes`, the PDQ hash of the face crop of every sampled frame of a decided session,
so replay detection survives crops, rescaling, mirrors and re-timing of a stored session (issue 32 point 3).

Revision ID: liveness_0003
Revises: liveness_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "liveness_0003"
down_revision = "liveness_0002"


def upgrade() -> None:
    op.create_table(
        "liveness_face_hashes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(32),
            sa.ForeignKey("liveness_sessions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("pdq", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("liveness_face_hashes")
