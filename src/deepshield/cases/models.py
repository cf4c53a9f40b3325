"""Case tables: one reported item per case, its timeline, evidence, actions, statements, appeals, webhooks,
audit.

Timestamps are timezone-aware UTC. `Case.version` guards every state change (conditional UPDATE), so two
reviewers acting at once produce one action.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, DateTime, Dialect, ForeignKey, Integer, UniqueConstraint
from sqlalchemy import String as _String
from sqlalchemy import Text as _Text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from deepshield.store.db import Base
from deepshield.store.timeutil import utcnow


def strip_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL; SQLite can. Dropping it keeps both databases storing the same thing."""
    return value.replace("\x00", "") if isinstance(value, str) else value


class String(TypeDecorator[str]):
    impl = _String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return strip_nul(value)


class Text(TypeDecorator[str]):
    impl = _Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return strip_nul(value)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)  # the case number, e.g. DS-7KQ2-M9XA
    version: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(16))  # api, form
    submitted_by: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    category: Mapped[str] = mapped_column(String(32))
    jurisdiction: Mapped[str] = mapped_column(String(8))
    content_locations: Mapped[str] = mapped_column(Text)  # JSON list of URLs / identifiers
    explanation: Mapped[str] = mapped_column(Text, default="")
    good_faith: Mapped[bool] = mapped_column(Boolean, default=False)
    signature: Mapped[str] = mapped_column(String(256), default="")
    reporter_name: Mapped[str] = mapped_column(String(256), default="")
    reporter_email: Mapped[str] = mapped_column(String(256), default="")
    reporter_contact: Mapped[str] = mapped_column(String(512), default="")
    reporter_role: Mapped[str] = mapped_column(String(32), default="")
    missing: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of {"field", "why"}
    pin_hash: Mapped[str] = mapped_column(String(256))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    valid_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(64), nullable=True)  # e.g. "remove,bank" or "no_action"
    assignee: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)  # who claimed it
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: when the deadline sweep raised the warning / the breach (each is announced once)
    warned_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    breached_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PinAttempt(Base):
    """Wrong PINs from one client for one case number (existing or not): the lockout falls on the guesser, not
    on the case, so a victim signing in from elsewhere is never locked out by someone else's guesses."""

    __tablename__ = "pin_attempts"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)  # keyed hash of the client address
    case_id: Mapped[str] = mapped_column(String(20), primary_key=True)  # as typed: no foreign key
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_failed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class CaseTransition(Base):
    """One row per state entered: the timestamp of every state, and who moved the case there."""

    __tablename__ = "case_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    actor_kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")


class CaseMedia(Base):
    __tablename__ = "case_media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    filename: Mapped[str] = mapped_column(String(512))
    path: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    hashes: Mapped[str] = mapped_column(Text, default="{}")  # JSON {signal: hex}
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseEvidence(Base):
    """What a screener found: detector scores, labels, bank matches (JSON), tied to the media's hash."""

    __tablename__ = "case_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    media_id: Mapped[int | None] = mapped_column(ForeignKey("case_media.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))  # detector, labels, match
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text, default="{}")
    automated: Mapped[bool] = mapped_column(Boolean, default=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VictimHash(Base):
    """Hashes the victim computed on their own device and added to the case (never the media itself)."""

    __tablename__ = "case_victim_hashes"
    __table_args__ = (UniqueConstraint("case_id", "signal", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    signal: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CaseAction(Base):
    __tablename__ = "case_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # remove, restrict, bank, no_action
    actor: Mapped[str] = mapped_column(String(128))
    actor_kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reversed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StatementOfReasons(Base):
    """DSA Art. 17 statement for one restriction; the Transparency Database export reads these (no personal
    data)."""

    __tablename__ = "statements_of_reasons"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid, unique per statement
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    decision: Mapped[str] = mapped_column(String(64))  # remove / restrict (+bank)
    visibility: Mapped[str] = mapped_column(String(64))
    territorial_scope: Mapped[str] = mapped_column(String(256))
    duration: Mapped[str] = mapped_column(String(64))
    facts: Mapped[str] = mapped_column(Text)
    notice_triggered: Mapped[bool] = mapped_column(Boolean)
    automated_detection: Mapped[bool] = mapped_column(Boolean)
    automated_decision: Mapped[bool] = mapped_column(Boolean)
    ground: Mapped[str] = mapped_column(String(32))  # illegal_content / incompatible_with_terms
    legal_ground: Mapped[str] = mapped_column(Text)
    terms_clause: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(64))
    redress: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Appeal(Base):
    __tablename__ = "case_appeals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    filed_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)  # upheld, reversed
    decision_reason: Mapped[str] = mapped_column(Text, default="")


class WebhookDelivery(Base):
    """Outbox row written in the same transaction as the action; a worker posts it until 2xx or dead
    letter."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    case_id: Mapped[str | None] = mapped_column(String(20), index=True, nullable=True)
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), index=True)  # pending, delivered, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UploadScreening(Base):
    """Why an upload was blocked, labelled, queued or allowed; banking later searches these for copies."""

    __tablename__ = "upload_screenings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str] = mapped_column(String(512))
    content_ref: Mapped[str] = mapped_column(String(512), default="")  # the platform's own id for the upload
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    hashes: Mapped[str] = mapped_column(Text, default="{}")
    decision: Mapped[str] = mapped_column(String(16))  # block, label, review, allow
    reasons: Mapped[str] = mapped_column(Text, default="[]")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    copy_of_case: Mapped[str | None] = mapped_column(String(20), nullable=True)


class AuditEvent(Base):
    """Append-only, hash-chained: hash = sha256(canonical JSON of every field + prev_hash)."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    case_id: Mapped[str | None] = mapped_column(String(20), index=True, nullable=True)
    actor: Mapped[str] = mapped_column(String(128))
    actor_kind: Mapped[str] = mapped_column(String(16))  # human, automated
    at: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, stored as text so the hash input is exact
    action: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of sha256 hex
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the newest seq and hash. Appenders lock it first, which serialises the chain across
    processes."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
