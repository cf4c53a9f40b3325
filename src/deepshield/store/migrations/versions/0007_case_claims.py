"""Cases: claiming. `assignee` already names who works a case; `claimed_at` says since when, so the queue can
show claims and a second reviewer's claim is a conflict, not a silent takeover.

Revision ID: 0007_case_claims
Revises: 0006_pin_attempts
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_case_claims"
down_revision = "0006_pin_attempts"


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_cases_assignee", ["assignee"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_assignee")
        batch.drop_column("claimed_at")
