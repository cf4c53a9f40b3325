"""Matching: retroactive archive searches become rows, so any service process answers for any search and a
restart keeps the record; the running process's id and heartbeat tell a live search from one whose process died.

Revision ID: matching_0005
Revises: matching_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "matching_0005"
down_revision = "matching_0004"


def upgrade() -> None:
    op.create_table(
        "archive_searches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("bank", sa.String(128), nullable=False),
        sa.Column("archive", sa.String(1024), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("stored_hashes", sa.BigInteger, nullable=False),
        sa.Column("copy_count", sa.BigInteger, nullable=False),
        sa.Column("copies_json", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )
    # The heartbeat renews every unfinished search of one process in one statement.
    op.create_index("ix_archive_searches_worker_status", "archive_searches", ["worker", "status"])


def downgrade() -> None:
    op.drop_index("ix_archive_searches_worker_status", "archive_searches")
    op.drop_table("archive_searches")
