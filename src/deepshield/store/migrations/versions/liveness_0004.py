"""Liveness: `liveness_trajectories`, the head motion of a decided session (yaw, pitch, roll, eye aspect ratio
and face position at 15 Hz, float16), so a mirrored, cropped, rescaled or re-timed copy of it is recognised
by how the head moved (issue 32 point 3).

Revision ID: liveness_0004
Revises: liveness_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "liveness_0004"
down_revision = "liveness_0003"


def upgrade() -> None:
    op.create_table(
        "liveness_trajectories",
        sa.Column(
            "session_id",
            sa.String(32),
            sa.ForeignKey("liveness_sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("rate_hz", sa.Float(), nullable=False),
        sa.Column("samples", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("liveness_trajectories")
