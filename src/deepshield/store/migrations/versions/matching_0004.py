"""Matching: per signal type settings (HMA's `PUT /c/signal_type/<name>`): the share of lookups a signal type
takes part in; a type without a row is fully on.

Revision ID: matching_0004
Revises: matching_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "matching_0004"
down_revision = "matching_0003"


def upgrade() -> None:
    op.create_table(
        "match_signal_types",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("enabled_ratio", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("match_signal_types")
