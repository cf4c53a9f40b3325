"""Matching: `disable_until_ts` as a 64-bit integer. A Unix time after 2038-01-19 (HMA clients send e.g.
4102444800 for 2100) overflowed PostgreSQL's 32-bit `integer` with a server error; SQLite's INTEGER is already
64-bit.

Revision ID: matching_0002
Revises: matching_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "matching_0002"
down_revision = "matching_0001"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("match_entries", "disable_until_ts", type_=sa.BigInteger, existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("match_entries", "disable_until_ts", type_=sa.Integer, existing_nullable=False)
