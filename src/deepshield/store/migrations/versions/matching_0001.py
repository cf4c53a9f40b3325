"""Matching: hash banks, banked entries, their signals, and the index change log.

Revision ID: matching_0001
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "matching_0001"
down_revision = "0001_foundation"
branch_labels = ("matching",)


def upgrade() -> None:
    op.create_table(
        "match_banks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("enabled_ratio", sa.Float, nullable=False, server_default="1.0"),
        sa.Column("is_negative", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("threshold", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "match_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("bank_id", sa.Integer, sa.ForeignKey("match_banks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("content_type", sa.String(16), nullable=True),
        sa.Column("source", sa.String(256), nullable=True),
        sa.Column("case_id", sa.String(128), nullable=True),
        sa.Column("added_by", sa.String(128), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("original_media_uri", sa.String(1024), nullable=True),
        sa.Column("disable_until_ts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("extra_json", sa.Text, nullable=True),
    )
    op.create_index("ix_match_entries_bank_id", "match_entries", ["bank_id"])
    op.create_index("ix_match_entries_case_id", "match_entries", ["case_id"])
    op.create_table(
        "match_signals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.Integer, sa.ForeignKey("match_entries.id", ondelete="CASCADE"), nullable=False),
        sa.Column("bank_id", sa.Integer, nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("value_key", sa.String(64), nullable=False),
        sa.Column("quality", sa.Integer, nullable=True),
    )
    op.create_index("ix_match_signals_entry_id", "match_signals", ["entry_id"])
    op.create_index("ix_match_signals_bank_id", "match_signals", ["bank_id"])
    op.create_index("ix_match_signals_type_value", "match_signals", ["signal_type", "value_key"])
    op.create_table(
        "match_index_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("signal_id", sa.Integer, nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("match_index_log")
    op.drop_table("match_signals")
    op.drop_table("match_entries")
    op.drop_table("match_banks")
