"""Where banks live: one interface (`MatchStore`), a SQL implementation and an in-memory one."""

from __future__ import annotations

from typing import TypeAlias

from sqlalchemy.orm import Session

from deepshield.matching.storage.interface import (
    BankRecord,
    EntryRecord,
    ExchangeRecord,
    LogRow,
    MatchStore,
    NewBank,
    NewEntry,
    SignalRow,
)
from deepshield.matching.storage.memory import MemoryMatchStore
from deepshield.matching.storage.sql import SqlMatchStore

#: What every service function takes first: a store, or a SQLAlchemy session (the SQL store over it).
StoreLike: TypeAlias = "Session | MatchStore"


def as_store(s: StoreLike) -> MatchStore:
    return SqlMatchStore(s) if isinstance(s, Session) else s


__all__ = [
    "BankRecord",
    "EntryRecord",
    "ExchangeRecord",
    "LogRow",
    "MatchStore",
    "MemoryMatchStore",
    "NewBank",
    "NewEntry",
    "SignalRow",
    "SqlMatchStore",
    "StoreLike",
    "as_store",
]
