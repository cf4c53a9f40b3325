"""Liveness: sessions, frame hashes for replay detection, lockouts.

Revision ID: 0003_liveness
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_liveness"
down_revision = "0001_foundation"
branch_labels = ("liveness",)


def upgrade() -> None:
    op.create_table(
        "liveness_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("subject_ref", sa.String(128), nullable=True, index=True),
        sa.Column("device_ref", sa.String(128), nullable=True, index=True),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("script_json", sa.Text, nullable=False),
        sa.Column("id_photo_path", sa.String(1024), nullable=True),
        sa.Column("id_embedding", sa.LargeBinary, nullable=True),
        sa.Column("embedder", sa.String(64), nullable=True),
        sa.Column("video_path", sa.String(1024), nullable=True),
        sa.Column("video_sha256", sa.String(64), nullable=True, index=True),
        sa.Column("outcome", sa.String(16), nullable=True, index=True),
        sa.Column("reasons_json", sa.Text, nullable=True),
        sa.Column("result_json", sa.Text, nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True, index=True),
    )
    op.create_table(
        "liveness_frame_hashes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(32),
            sa.ForeignKey("liveness_sessions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("t", sa.Float, nullable=False),
        sa.Column("phash", sa.String(16), nullable=False),
    )
    op.create_table(
        "liveness_lockouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, index=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("liveness_lockouts")
    op.drop_table("liveness_frame_hashes")
    op.drop_table("liveness_sessions")
