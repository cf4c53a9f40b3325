"""What the matching services need from a store (as OpenMediaMatch's `storage/interface.py`).

Two implementations: `sql.SqlMatchStore` over the caller's SQLAlchemy session (the real one: the caller's
transaction decides, nothing here commits) and `memory.MemoryMatchStore` (tests, and embedding without a
database). Both keep the change log that the in-memory indexes follow (`indexes.py`): every signal added or
removed writes a log row with it, so any index over the store sees every change in order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from deepshield.config import Settings
from deepshield.jsontypes import JsonValue

if TYPE_CHECKING:
    from deepshield.matching.indexes import MatchIndexes


@dataclass
class BankRecord:
    """A bank as stored; the services change a record's fields and hand it back to `save_bank`."""

    id: int
    name: str
    description: str | None
    enabled_ratio: float
    is_negative: bool
    threshold: int | None
    created_at: dt.datetime | None


@dataclass
class EntryRecord:
    """One banked piece of content (HMA's bank content) as stored, without its signals."""

    id: int
    bank_id: int
    content_type: str | None
    source: str | None
    case_id: str | None
    added_by: str | None
    added_at: dt.datetime | None
    note: str | None
    original_media_uri: str | None
    disable_until_ts: int
    extra: dict[str, JsonValue] | None


@dataclass(frozen=True)
class NewBank:
    """A bank to be stored (its id comes from the store); the fields are the stored columns."""

    name: str
    description: str | None
    threshold: int | None
    is_negative: bool
    enabled_ratio: float
    created_at: dt.datetime


@dataclass(frozen=True)
class NewEntry:
    """An entry to be stored (its id comes from the store)."""

    content_type: str | None
    source: str | None
    case_id: str | None
    added_by: str | None
    added_at: dt.datetime
    note: str | None
    original_media_uri: str | None
    extra: dict[str, JsonValue] | None


@dataclass
class ExchangeRecord:
    """A signal exchange (HMA's collaboration): where a bank's signals come from, and how the last fetch went.

    `api` names the exchange type (`matching.exchanges`), `api_json` its settings (a file path, a server URL,
    a privacy group). Times are Unix seconds; 0 = never."""

    name: str
    api: str
    bank: str
    api_json: dict[str, JsonValue]
    enabled: bool = True
    last_fetch_start_ts: int = 0
    last_fetch_complete_ts: int = 0
    last_fetch_succeeded: bool | None = None
    fetched_items: int = 0
    checkpoint_ts: int = 0
    error: str | None = None


class SignalRow(NamedTuple):
    """One stored hash of an entry (a tuple: millions are read at start-up)."""

    id: int
    bank_id: int
    signal_type: str
    value: str


class LogRow(NamedTuple):
    """One change-log row: `op` is "add" or "remove" of the stored signal `signal_id`."""

    id: int
    op: str
    signal_id: int
    signal_type: str


class MatchStore(Protocol):
    """Banks, entries, their signals and the change log. Lists come back ordered by id unless said otherwise."""

    # ---- banks
    def bank(self, name: str) -> BankRecord | None: ...
    def bank_by_id(self, bank_id: int) -> BankRecord | None: ...
    def banks(self) -> list[BankRecord]:
        """Every bank, ordered by name."""
        ...

    def add_bank(self, bank: NewBank) -> BankRecord: ...
    def save_bank(self, bank: BankRecord) -> None: ...
    def delete_bank(self, bank_id: int) -> int:
        """Delete a bank, its entries and signals (logging each signal's removal); returns the entries."""
        ...

    def entry_counts(self) -> dict[int, int]:
        """Entries per bank id (banks without entries may be absent)."""
        ...

    def count_entries(self, bank_id: int) -> int: ...

    # ---- entries and signals
    def add_entry(self, bank_id: int, entry: NewEntry) -> EntryRecord: ...
    def add_signal(self, entry_id: int, bank_id: int, signal_type: str, value: str, quality: int | None) -> int:
        """Store one hash of an entry and log its addition; returns the signal id."""
        ...

    def entry(self, entry_id: int) -> EntryRecord | None: ...
    def entries(self, bank_id: int, *, after_id: int = 0, limit: int = 100, offset: int = 0) -> list[EntryRecord]: ...
    def entries_by_id(self, entry_ids: Sequence[int]) -> dict[int, EntryRecord]: ...
    def entry_signals(self, entry_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        """{entry id: {signal type: value}} for each id given (empty for an entry without signals)."""
        ...

    def entry_of_signals(self, signal_ids: Sequence[int]) -> dict[int, int]:
        """{signal id: entry id} for the stored signals among those given."""
        ...

    def case_entry_ids(self, case_id: str) -> list[int]: ...
    def set_disable_until(self, entry_id: int, ts: int) -> None: ...
    def set_note(self, entry_id: int, note: str | None) -> None: ...
    def remove_entries(self, entry_ids: Sequence[int]) -> None:
        """Delete entries and their signals, logging each signal's removal."""
        ...

    # ---- what the indexes follow
    def max_log_id(self) -> int: ...
    def log_since(self, after_id: int) -> list[LogRow]: ...
    def log_time(self, log_id: int) -> dt.datetime | None:
        """When a change-log row was written (HMA's `built_to` is a time); None for an unknown id."""
        ...

    def signals_by_id(self, signal_ids: Sequence[int]) -> list[SignalRow]: ...
    def iter_signals(self, batch: int) -> Iterator[tuple[int, int, str, str]]:
        """Every stored signal as (id, bank id, signal type, value), by id, read `batch` rows at a time
        (plain tuples: the start-up load reads millions)."""
        ...

    # ---- signal exchanges
    def exchanges(self) -> list[ExchangeRecord]:
        """Every exchange, ordered by name."""
        ...

    def exchange(self, name: str) -> ExchangeRecord | None: ...
    def save_exchange(self, exchange: ExchangeRecord) -> None:
        """Insert or replace the exchange of that name."""
        ...

    def delete_exchange(self, name: str) -> bool:
        """Forget an exchange (its bank stays); False when there was none."""
        ...

    def exchange_credentials(self, api: str) -> dict[str, JsonValue] | None:
        """The credentials stored for an exchange type, or None."""
        ...

    def set_exchange_credentials(self, api: str, credentials: dict[str, JsonValue] | None) -> None:
        """Store (None: forget) the credentials of an exchange type."""
        ...

    def signal_type_ratios(self) -> dict[str, float]:
        """{signal type: enabled_ratio} as set (a type not listed is fully on)."""
        ...

    def set_signal_type_ratio(self, name: str, ratio: float) -> None: ...

    def indexes(self, settings: Settings | None) -> MatchIndexes:
        """The in-memory indexes that follow this store (process-wide for a database, per object in memory)."""
        ...
