"""Liveness records: sessions (script, ID photo embedding, decision), frame hashes and head motion for replay,
lockouts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from deepshield.store.db import Base
from deepshield.store.timeutil import utcnow


class LivenessSession(Base):
    __tablename__ = "liveness_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: when the capture page started recording: the clock each step's reveal is timed on
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: open, processing, decided, expired, abandoned (started, then superseded by a newer session)
    status: Mapped[str] = mapped_column(String(16), default="open")
    subject_ref: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    device_ref: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    script_json: Mapped[str] = mapped_column(Text)
    id_photo_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    id_embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    embedder: Mapped[str | None] = mapped_column(String(64), nullable=True)
    video_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    video_sha256: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), index=True, nullable=True)  # pass, fail, review
    reasons_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True, nullable=True)


class _SessionHashRow:
    """A hash of one frame of a decided session, deleted with it."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("liveness_sessions.id", ondelete="CASCADE"), index=True
    )
    t: Mapped[float] = mapped_column(Float)


class LivenessFrameHash(_SessionHashRow, Base):
    __tablename__ = "liveness_frame_hashes"

    phash: Mapped[str] = mapped_column(String(16))  # 64-bit perceptual hash, hex


class LivenessFaceHash(_SessionHashRow, Base):
    """The face crop's PDQ hash of every sampled frame (replay detection that survives crops, rescaling, mirrors
    and re-timing)."""

    __tablename__ = "liveness_face_hashes"

    pdq: Mapped[str] = mapped_column(String(64))  # 256-bit PDQ hash, hex


class LivenessTrajectory(Base):
    """A decided session's head motion (`liveness.trajectory`: float16 samples x columns at its rate), for replay
    detection that no edit of the pixels gets past."""

    __tablename__ = "liveness_trajectories"

    session_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("liveness_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    rate_hz: Mapped[float] = mapped_column(Float)
    samples: Mapped[bytes] = mapped_column(LargeBinary)


class LivenessLockout(Base):
    __tablename__ = "liveness_lockouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), index=True)  # "subject:<ref>" or "device:<ref>"
    until: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
