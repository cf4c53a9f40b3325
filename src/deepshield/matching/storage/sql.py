"""The matching store in SQL (SQLite or PostgreSQL) through the caller's session; it flushes, never commits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from deepshield.config import Settings
from deepshield.jsontypes import JsonValue
from deepshield.matching.indexes import MatchIndexes, get_indexes
from deepshield.matching.models import (
    MatchBank,
    MatchEntry,
    MatchExchange,
    MatchExchangeCredentials,
    MatchIndexLog,
    MatchSignal,
    MatchSignalTypeConfig,
)
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

#: Ids per IN (...) clause: under SQLite's old limit of 999 bound parameters.
_CHUNK = 900


def _bank(b: MatchBank) -> BankRecord:
    return BankRecord(
        id=b.id,
        name=b.name,
        description=b.description,
        enabled_ratio=float(b.enabled_ratio),
        is_negative=bool(b.is_negative),
        threshold=b.threshold,
        created_at=b.created_at,
    )


def _entry(e: MatchEntry) -> EntryRecord:
    """The row as a record: each field from the column of its name, but for the JSON-encoded extra."""
    facts = {k: getattr(e, k) for k in _ENTRY_COLUMNS}
    extra = json.loads(e.extra_json) if e.extra_json else None
    return EntryRecord(**facts, disable_until_ts=int(e.disable_until_ts or 0), extra=extra)


_ENTRY_COLUMNS = tuple(f.name for f in dataclasses.fields(EntryRecord) if f.name not in ("disable_until_ts", "extra"))


#: ExchangeRecord fields stored in columns of the same name (all but api_json, kept as JSON text).
_EXCHANGE_COLUMNS = tuple(f.name for f in dataclasses.fields(ExchangeRecord) if f.name != "api_json")


def _exchange(x: MatchExchange) -> ExchangeRecord:
    cols = {k: getattr(x, k) for k in _EXCHANGE_COLUMNS}
    return ExchangeRecord(api_json=json.loads(x.api_json or "{}"), **cols)


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    ids = list(ids)
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


class SqlMatchStore:
    """`MatchStore` over one SQLAlchemy session (tables in `models.py`)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # ---- banks
    def _orm_bank(self, bank_id: int) -> MatchBank:
        b = self.session.get(MatchBank, bank_id)
        if b is None:
            raise KeyError(bank_id)
        return b

    def bank_by_id(self, bank_id: int) -> BankRecord | None:
        b = self.session.get(MatchBank, bank_id)
        return _bank(b) if b is not None else None

    def bank(self, name: str) -> BankRecord | None:
        b = self.session.scalar(select(MatchBank).where(MatchBank.name == name))
        return _bank(b) if b is not None else None

    def banks(self) -> list[BankRecord]:
        return [_bank(b) for b in self.session.scalars(select(MatchBank).order_by(MatchBank.name))]

    def add_bank(self, bank: NewBank) -> BankRecord:
        b = MatchBank(**dataclasses.asdict(bank))
        self.session.add(b)
        self.session.flush()
        return _bank(b)

    def save_bank(self, bank: BankRecord) -> None:
        b = self._orm_bank(bank.id)
        b.name, b.description, b.threshold = bank.name, bank.description, bank.threshold
        b.is_negative, b.enabled_ratio = bank.is_negative, bank.enabled_ratio
        self.session.flush()

    def delete_bank(self, bank_id: int) -> int:
        s = self.session
        q = select(MatchSignal.id, MatchSignal.signal_type).where(MatchSignal.bank_id == bank_id)
        self._log_removals((int(sid), str(st)) for sid, st in s.execute(q))
        s.execute(delete(MatchSignal).where(MatchSignal.bank_id == bank_id))
        n = s.scalar(select(func.count()).select_from(MatchEntry).where(MatchEntry.bank_id == bank_id)) or 0
        s.execute(delete(MatchEntry).where(MatchEntry.bank_id == bank_id))
        s.delete(self._orm_bank(bank_id))
        s.flush()
        return int(n)

    def entry_counts(self) -> dict[int, int]:
        rows = self.session.execute(select(MatchEntry.bank_id, func.count()).group_by(MatchEntry.bank_id))
        return {int(b): int(n) for b, n in rows}

    def count_entries(self, bank_id: int) -> int:
        q = select(func.count()).select_from(MatchEntry).where(MatchEntry.bank_id == bank_id)
        return int(self.session.scalar(q) or 0)

    # ---- entries and signals
    def add_entry(self, bank_id: int, entry: NewEntry) -> EntryRecord:
        # NewEntry's fields are the table's columns, but for extra, which is stored as JSON text.
        facts = dataclasses.asdict(entry)
        extra = facts.pop("extra")
        e = MatchEntry(bank_id=bank_id, extra_json=json.dumps(extra) if extra else None, **facts)
        self.session.add(e)
        self.session.flush()
        return _entry(e)

    def add_signal(self, entry_id: int, bank_id: int, signal_type: str, value: str, quality: int | None) -> int:
        s = MatchSignal(
            entry_id=entry_id,
            bank_id=bank_id,
            signal_type=signal_type,
            value=value,
            value_key=value[:64],
            quality=quality,
        )
        self.session.add(s)
        self.session.flush()
        self.session.add(MatchIndexLog(op="add", signal_id=s.id, signal_type=signal_type, created_at=utcnow()))
        self.session.flush()
        return s.id

    def entry(self, entry_id: int) -> EntryRecord | None:
        e = self.session.get(MatchEntry, entry_id)
        return _entry(e) if e is not None else None

    def entries(self, bank_id: int, *, after_id: int = 0, limit: int = 100, offset: int = 0) -> list[EntryRecord]:
        q = select(MatchEntry).where(MatchEntry.bank_id == bank_id)
        if after_id:
            q = q.where(MatchEntry.id > after_id)
        q = q.order_by(MatchEntry.id).limit(limit)
        if offset:
            q = q.offset(offset)
        return [_entry(e) for e in self.session.scalars(q)]

    def entries_by_id(self, entry_ids: Sequence[int]) -> dict[int, EntryRecord]:
        out: dict[int, EntryRecord] = {}
        for chunk in _chunks(sorted(set(entry_ids))):
            out.update(
                (e.id, _entry(e)) for e in self.session.scalars(select(MatchEntry).where(MatchEntry.id.in_(chunk)))
            )
        return out

    def entry_signals(self, entry_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {i: {} for i in entry_ids}
        for chunk in _chunks(entry_ids):
            rows = self.session.execute(
                select(MatchSignal.entry_id, MatchSignal.signal_type, MatchSignal.value).where(
                    MatchSignal.entry_id.in_(chunk)
                )
            )
            for eid, st, v in rows:
                out[eid][st] = v
        return out

    def entry_of_signals(self, signal_ids: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for chunk in _chunks(signal_ids):
            q = select(MatchSignal.id, MatchSignal.entry_id).where(MatchSignal.id.in_(chunk))
            out.update((int(sid), int(eid)) for sid, eid in self.session.execute(q))
        return out

    def case_entry_ids(self, case_id: str) -> list[int]:
        return list(self.session.scalars(select(MatchEntry.id).where(MatchEntry.case_id == case_id)))

    def set_disable_until(self, entry_id: int, ts: int) -> None:
        e = self.session.get(MatchEntry, entry_id)
        if e is None:
            raise KeyError(entry_id)
        e.disable_until_ts = ts
        self.session.flush()

    def set_note(self, entry_id: int, note: str | None) -> None:
        e = self.session.get(MatchEntry, entry_id)
        if e is None:
            raise KeyError(entry_id)
        e.note = note
        self.session.flush()

    def remove_entries(self, entry_ids: Sequence[int]) -> None:
        s = self.session
        for chunk in _chunks(entry_ids):
            q = select(MatchSignal.id, MatchSignal.signal_type).where(MatchSignal.entry_id.in_(chunk))
            self._log_removals((int(sid), str(st)) for sid, st in s.execute(q))
            s.execute(delete(MatchSignal).where(MatchSignal.entry_id.in_(chunk)))
            s.execute(delete(MatchEntry).where(MatchEntry.id.in_(chunk)))
        s.flush()

    def _log_removals(self, rows: Iterable[tuple[int, str]]) -> None:
        for sid, st in list(rows):
            self.session.add(MatchIndexLog(op="remove", signal_id=sid, signal_type=st, created_at=utcnow()))

    # ---- what the indexes follow
    def max_log_id(self) -> int:
        return int(self.session.scalar(select(func.max(MatchIndexLog.id))) or 0)

    def log_since(self, after_id: int) -> list[LogRow]:
        q = (
            select(MatchIndexLog.id, MatchIndexLog.op, MatchIndexLog.signal_id, MatchIndexLog.signal_type)
            .where(MatchIndexLog.id > after_id)
            .order_by(MatchIndexLog.id)
        )
        return [LogRow(i, op, sid, st) for i, op, sid, st in self.session.execute(q)]

    def log_time(self, log_id: int) -> dt.datetime | None:
        return self.session.scalar(select(MatchIndexLog.created_at).where(MatchIndexLog.id == log_id))

    # ---- signal exchanges
    def exchanges(self) -> list[ExchangeRecord]:
        return [_exchange(x) for x in self.session.scalars(select(MatchExchange).order_by(MatchExchange.name))]

    def exchange(self, name: str) -> ExchangeRecord | None:
        x = self.session.get(MatchExchange, name)
        return _exchange(x) if x is not None else None

    def save_exchange(self, exchange: ExchangeRecord) -> None:
        x = self.session.get(MatchExchange, exchange.name) or MatchExchange(name=exchange.name)
        for k in _EXCHANGE_COLUMNS:
            setattr(x, k, getattr(exchange, k))
        x.api_json = json.dumps(exchange.api_json)
        self.session.add(x)
        self.session.flush()

    def delete_exchange(self, name: str) -> bool:
        x = self.session.get(MatchExchange, name)
        if x is None:
            return False
        self.session.delete(x)
        self.session.flush()
        return True

    def exchange_credentials(self, api: str) -> dict[str, JsonValue] | None:
        c = self.session.get(MatchExchangeCredentials, api)
        return json.loads(c.credential_json) if c is not None else None

    def set_exchange_credentials(self, api: str, credentials: dict[str, JsonValue] | None) -> None:
        c = self.session.get(MatchExchangeCredentials, api)
        if credentials is None:
            if c is not None:
                self.session.delete(c)
        else:
            c = c or MatchExchangeCredentials(api=api)
            c.credential_json = json.dumps(credentials)
            self.session.add(c)
        self.session.flush()

    def signal_type_ratios(self) -> dict[str, float]:
        return {c.name: float(c.enabled_ratio) for c in self.session.scalars(select(MatchSignalTypeConfig))}

    def set_signal_type_ratio(self, name: str, ratio: float) -> None:
        c = self.session.get(MatchSignalTypeConfig, name) or MatchSignalTypeConfig(name=name)
        c.enabled_ratio = ratio
        self.session.add(c)
        self.session.flush()

    def signals_by_id(self, signal_ids: Sequence[int]) -> list[SignalRow]:
        out: list[SignalRow] = []
        for chunk in _chunks(signal_ids):
            q = select(MatchSignal.id, MatchSignal.bank_id, MatchSignal.signal_type, MatchSignal.value).where(
                MatchSignal.id.in_(chunk)
            )
            out.extend(SignalRow(*r) for r in self.session.execute(q))
        return out

    def iter_signals(self, batch: int) -> Iterator[tuple[int, int, str, str]]:
        q = select(MatchSignal.id, MatchSignal.bank_id, MatchSignal.signal_type, MatchSignal.value).order_by(
            MatchSignal.id
        )
        # The result itself, not a generator over it: no Python frame per row on the start-up path.
        return iter(self.session.execute(q.execution_options(yield_per=batch)))

    def indexes(self, settings: Settings | None) -> MatchIndexes:
        return get_indexes(settings)
