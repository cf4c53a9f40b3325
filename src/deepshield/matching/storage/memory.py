"""The matching store in memory: the same contract as the SQL store (tests/matching/test_storage_contract.py),
for tests and for embedding matching without a database. No transactions: a change is there at once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from deepshield.config import Settings
from deepshield.jsontypes import JsonValue
from deepshield.matching.indexes import MatchIndexes
from deepshield.matching.storage.interface import (
    BankRecord,
    EntryRecord,
    ExchangeRecord,
    LogRow,
    NewBank,
    NewEntry,
    SignalRow,
)
from deepshield.store.timeutil import utcnow


@dataclass
class _Signal:
    row: SignalRow
    entry_id: int
    quality: int | None


class MemoryMatchStore:
    """`MatchStore` in dictionaries, with its own indexes. Thread-safe; records handed out are copies."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._banks: dict[int, BankRecord] = {}
        self._entries: dict[int, EntryRecord] = {}
        self._signals: dict[int, _Signal] = {}
        self._log: list[LogRow] = []
        self._log_times: dict[int, dt.datetime] = {}
        self._exchanges: dict[str, ExchangeRecord] = {}
        self._credentials: dict[str, dict[str, JsonValue]] = {}
        self._ratios: dict[str, float] = {}
        self._ids = {k: itertools.count(1) for k in ("bank", "entry", "signal", "log")}
        self._indexes = MatchIndexes()

    def _next(self, kind: str) -> int:
        return next(self._ids[kind])

    def _log_op(self, op: str, sig: SignalRow) -> None:
        row = LogRow(self._next("log"), op, sig.id, sig.signal_type)
        self._log.append(row)
        self._log_times[row.id] = utcnow()

    # ---- banks
    def bank(self, name: str) -> BankRecord | None:
        with self._lock:
            return next((dataclasses.replace(b) for b in self._banks.values() if b.name == name), None)

    def bank_by_id(self, bank_id: int) -> BankRecord | None:
        with self._lock:
            b = self._banks.get(bank_id)
            return dataclasses.replace(b) if b is not None else None

    def banks(self) -> list[BankRecord]:
        with self._lock:
            return [dataclasses.replace(b) for b in sorted(self._banks.values(), key=lambda b: b.name)]

    def add_bank(self, bank: NewBank) -> BankRecord:
        with self._lock:
            if any(b.name == bank.name for b in self._banks.values()):
                raise ValueError(f"bank {bank.name!r} exists")  # the services check first, as the SQL unique key does
            b = BankRecord(id=self._next("bank"), **dataclasses.asdict(bank))
            self._banks[b.id] = b
            return dataclasses.replace(b)

    def save_bank(self, bank: BankRecord) -> None:
        with self._lock:
            if bank.id not in self._banks:
                raise KeyError(bank.id)
            self._banks[bank.id] = dataclasses.replace(bank)

    def delete_bank(self, bank_id: int) -> int:
        with self._lock:
            ids = [e.id for e in self._entries.values() if e.bank_id == bank_id]
            self.remove_entries(ids)
            del self._banks[bank_id]
            return len(ids)

    def entry_counts(self) -> dict[int, int]:
        with self._lock:
            out: dict[int, int] = {}
            for e in self._entries.values():
                out[e.bank_id] = out.get(e.bank_id, 0) + 1
            return out

    def count_entries(self, bank_id: int) -> int:
        with self._lock:
            return sum(1 for e in self._entries.values() if e.bank_id == bank_id)

    # ---- entries and signals
    def add_entry(self, bank_id: int, entry: NewEntry) -> EntryRecord:
        with self._lock:
            if bank_id not in self._banks:
                raise KeyError(bank_id)
            facts = dataclasses.asdict(entry) | {"extra": dict(entry.extra) if entry.extra else None}
            e = EntryRecord(id=self._next("entry"), bank_id=bank_id, disable_until_ts=0, **facts)
            self._entries[e.id] = e
            return dataclasses.replace(e)

    def add_signal(self, entry_id: int, bank_id: int, signal_type: str, value: str, quality: int | None) -> int:
        with self._lock:
            if entry_id not in self._entries:
                raise KeyError(entry_id)
            row = SignalRow(self._next("signal"), bank_id, signal_type, value)
            self._signals[row.id] = _Signal(row, entry_id, quality)
            self._log_op("add", row)
            return row.id

    def entry(self, entry_id: int) -> EntryRecord | None:
        with self._lock:
            e = self._entries.get(entry_id)
            return dataclasses.replace(e) if e is not None else None

    def entries(self, bank_id: int, *, after_id: int = 0, limit: int = 100, offset: int = 0) -> list[EntryRecord]:
        with self._lock:
            rows = sorted((e for e in self._entries.values() if e.bank_id == bank_id and e.id > after_id), key=_id)
            return [dataclasses.replace(e) for e in rows[offset : offset + limit]]

    def entries_by_id(self, entry_ids: Sequence[int]) -> dict[int, EntryRecord]:
        with self._lock:
            return {i: dataclasses.replace(self._entries[i]) for i in entry_ids if i in self._entries}

    def entry_signals(self, entry_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        with self._lock:
            out: dict[int, dict[str, str]] = {i: {} for i in entry_ids}
            for s in sorted(self._signals.values(), key=lambda s: s.row.id):
                if s.entry_id in out:
                    out[s.entry_id][s.row.signal_type] = s.row.value
            return out

    def entry_of_signals(self, signal_ids: Sequence[int]) -> dict[int, int]:
        with self._lock:
            return {i: self._signals[i].entry_id for i in signal_ids if i in self._signals}

    def case_entry_ids(self, case_id: str) -> list[int]:
        with self._lock:
            return sorted(e.id for e in self._entries.values() if e.case_id == case_id)

    def set_disable_until(self, entry_id: int, ts: int) -> None:
        with self._lock:
            self._entries[entry_id].disable_until_ts = ts

    def set_note(self, entry_id: int, note: str | None) -> None:
        with self._lock:
            self._entries[entry_id].note = note

    def remove_entries(self, entry_ids: Sequence[int]) -> None:
        with self._lock:
            gone = set(entry_ids)
            for sid in sorted(s.row.id for s in self._signals.values() if s.entry_id in gone):
                self._log_op("remove", self._signals.pop(sid).row)
            for i in gone:
                self._entries.pop(i, None)

    # ---- what the indexes follow
    def max_log_id(self) -> int:
        with self._lock:
            return self._log[-1].id if self._log else 0

    def log_since(self, after_id: int) -> list[LogRow]:
        with self._lock:
            return [r for r in self._log if r.id > after_id]

    def log_time(self, log_id: int) -> dt.datetime | None:
        with self._lock:
            return self._log_times.get(log_id)

    # ---- signal exchanges
    def exchanges(self) -> list[ExchangeRecord]:
        with self._lock:
            return [dataclasses.replace(x, api_json=dict(x.api_json)) for _, x in sorted(self._exchanges.items())]

    def exchange(self, name: str) -> ExchangeRecord | None:
        with self._lock:
            x = self._exchanges.get(name)
            return dataclasses.replace(x, api_json=dict(x.api_json)) if x is not None else None

    def save_exchange(self, exchange: ExchangeRecord) -> None:
        with self._lock:
            self._exchanges[exchange.name] = dataclasses.replace(exchange, api_json=dict(exchange.api_json))

    def delete_exchange(self, name: str) -> bool:
        with self._lock:
            return self._exchanges.pop(name, None) is not None

    def exchange_credentials(self, api: str) -> dict[str, JsonValue] | None:
        with self._lock:
            c = self._credentials.get(api)
            return dict(c) if c is not None else None

    def set_exchange_credentials(self, api: str, credentials: dict[str, JsonValue] | None) -> None:
        with self._lock:
            if credentials is None:
                self._credentials.pop(api, None)
            else:
                self._credentials[api] = dict(credentials)

    def signal_type_ratios(self) -> dict[str, float]:
        with self._lock:
            return dict(self._ratios)

    def set_signal_type_ratio(self, name: str, ratio: float) -> None:
        with self._lock:
            self._ratios[name] = ratio

    def signals_by_id(self, signal_ids: Sequence[int]) -> list[SignalRow]:
        with self._lock:
            return [self._signals[i].row for i in signal_ids if i in self._signals]

    def iter_signals(self, batch: int) -> Iterator[tuple[int, int, str, str]]:
        with self._lock:
            rows = [s.row for s in sorted(self._signals.values(), key=lambda s: s.row.id)]
        yield from rows

    def indexes(self, settings: Settings | None) -> MatchIndexes:
        return self._indexes


def _id(e: EntryRecord) -> int:
    return e.id
