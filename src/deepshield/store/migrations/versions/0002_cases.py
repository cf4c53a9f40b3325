"""Cases: reports, timeline, media, evidence, actions, statements of reasons, appeals, webhooks,
screenings, audit.

Revision ID: 0002_cases
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_cases"
down_revision = "0001_foundation"
branch_labels = ("cases",)

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("submitted_by", sa.String(128), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("jurisdiction", sa.String(8), nullable=False),
        sa.Column("content_locations", sa.Text, nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("good_faith", sa.Boolean, nullable=False),
        sa.Column("signature", sa.String(256), nullable=False),
        sa.Column("reporter_name", sa.String(256), nullable=False),
        sa.Column("reporter_email", sa.String(256), nullable=False),
        sa.Column("reporter_contact", sa.String(512), nullable=False),
        sa.Column("reporter_role", sa.String(32), nullable=False),
        sa.Column("missing", sa.Text, nullable=False),
        sa.Column("pin_hash", sa.String(256), nullable=False),
        sa.Column("pin_failures", sa.Integer, nullable=False),
        sa.Column("pin_locked_until", TS, nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("valid_at", TS, nullable=True),
        sa.Column("due_at", TS, nullable=True, index=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decision", sa.String(64), nullable=True),
        sa.Column("assignee", sa.String(128), nullable=True),
        sa.Column("withdrawn_at", TS, nullable=True),
        sa.Column("warned_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
    )
    op.create_table(
        "case_transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(20), sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "case_media",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(20), sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("hashes", sa.Text, nullable=False),
        sa.Column("added_at", TS, nullable=False),
    )
    op.create_table(
        "case_evidence",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(20), sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("media_id", sa.Integer, sa.ForeignKey("case_media.id"), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("automated", sa.Boolean, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_table(
        "case_victim_hashes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(20), sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("signal", sa.String(32), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.Column("removed_at", TS, nullable=True),
        sa.UniqueConstraint("case_id", "signal", "value"),
    )
    op.create_table(
        "case_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(20), sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("reversed_at", TS, nullable=True),
    )
    op.create_table(
        "statements_of_reasons",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("case_id", sa.String(20), sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("decision", sa.String(64), nullable=False),
        sa.Column("visibility", sa.String(64), nullable=False),
        sa.Column("territorial_scope", sa.String(256), nullable=False),
        sa.Column("duration", sa.String(64), nullable=False),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("notice_triggered", sa.Boolean, nullable=False),
        sa.Column("automated_detection", sa.Boolean, nullable=False),
        sa.Column("automated_decision", sa.Boolean, nullable=False),
        sa.Column("ground", sa.String(32), nullable=False),
        sa.Column("legal_ground", sa.Text, nullable=False),
        sa.Column("terms_clause", sa.Text, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("redress", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_table(
        "case_appeals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(20), sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("filed_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("filed_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("case_id", sa.String(20), nullable=True, index=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
    )
    op.create_table(
        "upload_screenings",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("content_ref", sa.String(512), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("hashes", sa.Text, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("copy_of_case", sa.String(20), nullable=True),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("case_id", sa.String(20), nullable=True, index=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(
        sa.table(
            "audit_head",
            sa.column("id", sa.Integer),
            sa.column("seq", sa.Integer),
            sa.column("hash", sa.String),
        ),
        [{"id": 1, "seq": 0, "hash": "0" * 64}],
    )


def downgrade() -> None:
    for t in (
        "audit_head",
        "audit_events",
        "upload_screenings",
        "webhook_deliveries",
        "case_appeals",
        "statements_of_reasons",
        "case_actions",
        "case_victim_hashes",
        "case_evidence",
        "case_media",
        "case_transitions",
        "cases",
    ):
        op.drop_table(t)
