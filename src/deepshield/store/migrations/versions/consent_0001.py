"""Consent: requests (scope, source templates, sentence, evidence) and credentials (issue 29).

Revision ID: consent_0001
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "consent_0001"
down_revision = "0001_foundation"
branch_labels = ("consent",)


def upgrade() -> None:
    op.create_table(
        "consent_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capture_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=True, index=True),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("consent_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("source_json", sa.Text, nullable=False),
        sa.Column("face_template", sa.LargeBinary, nullable=True),
        sa.Column("voice_template", sa.LargeBinary, nullable=True),
        sa.Column("face_model", sa.String(64), nullable=True),
        sa.Column("voice_model", sa.String(64), nullable=True),
        sa.Column("sentence", sa.Text, nullable=False),
        sa.Column("liveness_session_id", sa.String(32), nullable=True),
        sa.Column("video_sha256", sa.String(64), nullable=True, index=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reasons_json", sa.Text, nullable=True),
        sa.Column("evidence_json", sa.Text, nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(128), nullable=True),
        sa.Column("pin_hash", sa.String(256), nullable=True),
        sa.Column("pin_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "consent_credentials",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("request_id", sa.String(32), sa.ForeignKey("consent_requests.id"), nullable=False, index=True),
        sa.Column("created_by", sa.String(128), nullable=True, index=True),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("face_template_sha256", sa.String(64), nullable=False),
        sa.Column("voice_template_sha256", sa.String(64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(16), nullable=True),
        sa.Column("revoke_reason", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("consent_credentials")
    op.drop_table("consent_requests")
