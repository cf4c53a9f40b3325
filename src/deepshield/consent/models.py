"""Consent records: requests (scope, source media templates, the capture session and its evidence) and the
credentials issued from them (revocable by the provider and by the person with a PIN)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from deepshield.store.db import Base
from deepshield.store.timeutil import utcnow


class ConsentRequest(Base):
    __tablename__ = "consent_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: the capture link works until then
    capture_expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    provider: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    #: the credential's expiry, asked for by the provider (capped by the policy)
    consent_expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: open, processing, issued, review, failed, expired
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    source_json: Mapped[str] = mapped_column(Text)  # [{"sha256", "name", "kind"}]
    face_template: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # float32 n x 128
    voice_template: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # float32 256
    face_model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    voice_model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sentence: Mapped[str] = mapped_column(Text)
    liveness_session_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    video_sha256: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)  # issued, review, failed
    reasons_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: the person's withdrawal PIN (shown once, when the consent video is received), as a salted scrypt hash;
    #: with the request id it withdraws the consent, issued or not yet
    pin_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    pin_failures: Mapped[int] = mapped_column(Integer, default=0)  # at the limit only the provider can revoke
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ConsentCredential(Base):
    __tablename__ = "consent_credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(32), ForeignKey("consent_requests.id"), index=True)
    created_by: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    provider: Mapped[str] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    face_template_sha256: Mapped[str] = mapped_column(String(64))
    voice_template_sha256: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(16), nullable=True)  # person, provider
    revoke_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
