"""Cases: wrong PINs counted per client and case number (`pin_attempts`) instead of per case, so a guesser
locks out itself, not the victim; the per-case counter goes.

Revision ID: 0006_pin_attempts
Revises: 0002_cases
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_pin_attempts"
down_revision = "0002_cases"


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("pin_failures")
        batch.drop_column("pin_locked_until")
    op.create_table(
        "pin_attempts",
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(20), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("pin_attempts")
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("pin_failures", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("pin_locked_until", sa.DateTime(timezone=True), nullable=True))
