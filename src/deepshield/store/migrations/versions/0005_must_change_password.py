"""Accounts: users.must_change_password (the first-start admin's one-time password must be replaced).

Revision ID: 0005_must_change_password
Revises: 0004_web_sessions
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_must_change_password"
down_revision = "0004_web_sessions"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
