"""Liveness: `started_at`, when the capture page started recording, so the server reveals each step only at
its due time on its own clock (issue 32 point 1).

Revision ID: liveness_0002
Revises: 0003_liveness
"""

import sqlalchemy as sa
from alembic import op

revision = "liveness_0002"
down_revision = "0003_liveness"


def upgrade() -> None:
    with op.batch_alter_table("liveness_sessions") as batch:
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("liveness_sessions") as batch:
        batch.drop_column("started_at")
