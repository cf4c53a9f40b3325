"""Banks, banked content (entries) and their signals; plus the change log the in-memory index follows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from deepshield.store.db import Base
from deepshield.store.timeutil import utcnow


class MatchBank(Base):
    __tablename__ = "match_banks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: HMA's `matching_enabled_ratio`: 1 = on, 0 = off, in between = that share of lookups (gradual roll-out).
    enabled_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    #: A negative bank holds known false positives: a lookup closer to one of them suppresses its matches.
    is_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Distance threshold for PDQ / vPDQ frames in this bank; NULL = the signal's default (31).
    threshold: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchEntry(Base):
    """One banked piece of content (HMA's bank content), with the metadata a match reports."""

    __tablename__ = "match_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("match_banks.id", ondelete="CASCADE"), index=True)
    content_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    source: Mapped[str | None] = mapped_column(String(256), nullable=True)
    case_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    added_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    original_media_uri: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    #: HMA `disable_until_ts`: matching of this entry is off until then (0 = enabled).
    disable_until_ts: Mapped[int] = mapped_column(BigInteger, default=0)  # a Unix time; 64-bit (matching_0002)
    extra_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class MatchSignal(Base):
    __tablename__ = "match_signals"
    __table_args__ = (Index("ix_match_signals_type_value", "signal_type", "value_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("match_entries.id", ondelete="CASCADE"), index=True)
    bank_id: Mapped[int] = mapped_column(Integer, index=True)  # denormalised: the index groups by bank
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    #: First 64 characters of the value, for equality look-ups of exact hashes without indexing long texts.
    value_key: Mapped[str] = mapped_column(String(64))
    quality: Mapped[int | None] = mapped_column(Integer, nullable=True)


class MatchIndexLog(Base):
    """Append-only change log: every process's in-memory index applies it before each lookup."""

    __tablename__ = "match_index_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    op: Mapped[str] = mapped_column(String(8))  # add | remove
    signal_id: Mapped[int] = mapped_column(Integer)
    signal_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchExchange(Base):
    """A signal exchange: a bank filled from outside (a python-threatexchange file, a ThreatExchange-shaped
    API), its settings and how its last fetch went (matching_0003)."""

    __tablename__ = "match_exchanges"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    api: Mapped[str] = mapped_column(String(64))
    bank: Mapped[str] = mapped_column(String(128))
    api_json: Mapped[str] = mapped_column(Text, default="{}")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_fetch_start_ts: Mapped[int] = mapped_column(BigInteger, default=0)
    last_fetch_complete_ts: Mapped[int] = mapped_column(BigInteger, default=0)
    last_fetch_succeeded: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    fetched_items: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint_ts: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class MatchExchangeCredentials(Base):
    """The credentials of an exchange type (a ThreatExchange token), set through HMA's
    `/c/exchanges/api/<api>`; never shown back (matching_0003)."""

    __tablename__ = "match_exchange_credentials"

    api: Mapped[str] = mapped_column(String(64), primary_key=True)
    credential_json: Mapped[str] = mapped_column(Text)


class MatchSignalTypeConfig(Base):
    """A signal type's `enabled_ratio` set through HMA's `PUT /c/signal_type/<name>`; no row: 1.0 (matching_0004)."""

    __tablename__ = "match_signal_types"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled_ratio: Mapped[float] = mapped_column(Float)


class ArchiveSearchRecord(Base):
    """A retroactive archive search (`matching.retro_jobs`): a row, so any service process answers for it and a
    restart keeps it; the process running it renews `heartbeat_at`, and a search whose heartbeat is older than
    the lease reads as failed (matching_0005)."""

    __tablename__ = "archive_searches"
    # The heartbeat renews every unfinished search of one process in one statement.
    __table_args__ = (Index("ix_archive_searches_worker_status", "worker", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    bank: Mapped[str] = mapped_column(String(128))
    archive: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued, running, done, failed
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stored_hashes: Mapped[int] = mapped_column(BigInteger, default=0)
    copy_count: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The copies shown, a JSON list capped at `retro_jobs.MAX_COPIES_SHOWN`; `copy_count` is always complete.
    copies_json: Mapped[str] = mapped_column(Text, default="[]")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    worker: Mapped[str] = mapped_column(String(64))
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
