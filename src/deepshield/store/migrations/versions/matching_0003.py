"""Matching: signal exchanges (HMA's `/c/exchanges`), each a bank filled from outside, with its settings and
the state of its last fetch; and the credentials of an exchange type (HMA's `/c/exchanges/api/<api>`).

Revision ID: matching_0003
Revises: matching_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "matching_0003"
down_revision = "matching_0002"


def upgrade() -> None:
    op.create_table(
        "match_exchanges",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("api", sa.String(64), nullable=False),
        sa.Column("bank", sa.String(128), nullable=False),
        sa.Column("api_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("last_fetch_start_ts", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_fetch_complete_ts", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_fetch_succeeded", sa.Boolean, nullable=True),
        sa.Column("fetched_items", sa.Integer, nullable=False, server_default="0"),
        sa.Column("checkpoint_ts", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=True),
    )

    op.create_table(
        "match_exchange_credentials",
        sa.Column("api", sa.String(64), primary_key=True),
        sa.Column("credential_json", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("match_exchange_credentials")
    op.drop_table("match_exchanges")
