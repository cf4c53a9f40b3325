"""Scans become jobs that any worker process claims: a lease (owner and expiry) and a count of attempts, so a
worker killed mid-job loses nothing (its job is claimed again once the lease lapses) and a late worker whose
lease was taken over cannot complete the job a second time.

Revision ID: scans_0001
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "scans_0001"
down_revision = "0001_foundation"


def upgrade() -> None:
    with op.batch_alter_table("scans") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("keep_report", sa.Boolean, nullable=False, server_default=sa.true()))
    op.create_index("ix_scans_status_created", "scans", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_scans_status_created", "scans")
    with op.batch_alter_table("scans") as batch:
        for name in ("keep_report", "attempts", "lease_expires_at", "lease_owner"):
            batch.drop_column(name)
