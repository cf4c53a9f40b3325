"""The process-wide in-memory indexes, kept in step with the store through its change log.

Every change to banked signals is written, in the same transaction, to the store's change log. Before each
lookup the indexes apply the log rows committed since the last one (one indexed query), so an add or a removal
by any process (API worker, CLI, the cases service) is visible to the very next lookup, and nothing that was
rolled back ever reaches memory. On first use the indexes are built from the store in one pass.

Which index holds a signal type's hashes is the signal type's choice (`SignalType.make_index`); this module
only routes rows to them by name.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deepshield.config import Settings, get_settings
from deepshield.matching.signals import UnknownSignalType, all_signals, get_signal
from deepshield.matching.signals.base import SignalIndex

if TYPE_CHECKING:
    from deepshield.matching.storage.interface import MatchStore

#: Log rows are re-read this far back, so a transaction that took an earlier id but committed later
#: (possible on PostgreSQL) is still applied.
_LOG_WINDOW = 512
_WINDOW_SCAN_EVERY_S = 2.0
_LOAD_BATCH = 100_000


def _fresh_indexes() -> dict[str, SignalIndex]:
    return {st.name: st.make_index() for st in all_signals()}


@dataclass
class MatchIndexes:
    """One index per registered signal type, and how far the change log has been applied."""

    by_type: dict[str, SignalIndex] = field(default_factory=_fresh_indexes)
    loaded: bool = False
    loaded_max_signal_id: int = 0
    last_log_id: int = 0
    applied: set[int] = field(default_factory=set)
    last_window_scan: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def index(self, signal_type: str) -> SignalIndex:
        """The index of a signal type (created on first use for a type registered after this object)."""
        idx = self.by_type.get(signal_type)
        if idx is None:
            st = get_signal(signal_type)  # also resolves another system's name for one of ours
            idx = self.by_type.get(st.name)
            if idx is None:
                idx = self.by_type[st.name] = st.make_index()
        return idx

    # ---- updates ----------------------------------------------------------------------------------------

    def _add(self, sid: int, bank_id: int, signal_type: str, value: str) -> None:
        if self._known(signal_type):
            self.index(signal_type).add(sid, bank_id, value)

    def _remove(self, sid: int, signal_type: str) -> None:
        if self._known(signal_type):
            self.index(signal_type).remove(sid)

    def _known(self, signal_type: str) -> bool:
        """Rows of a signal type no longer registered stay in the store but out of memory."""
        if signal_type in self.by_type:
            return True
        try:
            self.index(signal_type)
        except UnknownSignalType:
            return False
        return True

    def load(self, store: MatchStore) -> None:
        """Build everything from the store in one pass (start-up)."""
        with self.lock:
            self.last_log_id = store.max_log_id()
            self.by_type = _fresh_indexes()
            # Columns per signal type, handed over every _LOAD_BATCH rows: this loop runs once per banked
            # hash (millions), so it does no more per row than append.
            pending: dict[str, tuple[list[int], list[int], list[str]]] = {}
            unknown: set[str] = set()
            max_sid = 0
            for sid, bank_id, st, value in store.iter_signals(_LOAD_BATCH):
                max_sid = max(max_sid, sid)
                cols = pending.get(st)
                if cols is None:
                    if st in unknown or not self._known(st):
                        unknown.add(st)
                        continue
                    cols = pending[st] = ([], [], [])
                keys, groups, values = cols
                keys.append(sid)
                groups.append(bank_id)
                values.append(value)
                if len(keys) >= _LOAD_BATCH:
                    self.by_type[st].load(keys, groups, values)
                    pending[st] = ([], [], [])
            for st, (keys, groups, values) in pending.items():
                self.by_type[st].load(keys, groups, values)
            for idx in self.by_type.values():
                idx.loaded()
            self.loaded_max_signal_id = max_sid
            self.loaded = True

    def sync(self, store: MatchStore) -> int:
        """Apply committed changes since the last call; returns how many log rows were applied."""
        with self.lock:
            if not self.loaded:
                self.load(store)
                return 0
            # Usually only ids above the last one seen; every few seconds also a window below it, for
            # transactions that took an earlier id but committed later (PostgreSQL).
            now = time.monotonic()
            if now - self.last_window_scan >= _WINDOW_SCAN_EVERY_S:
                floor = max(0, self.last_log_id - _LOG_WINDOW)
                self.last_window_scan = now
            else:
                floor = self.last_log_id
            new = [r for r in store.log_since(floor) if r.id not in self.applied]
            if not new:
                return 0
            add_ids = [r.signal_id for r in new if r.op == "add" and r.signal_id > self.loaded_max_signal_id]
            values = {row.id: row for row in store.signals_by_id(add_ids)}
            for r in new:
                if r.op == "add" and r.signal_id in values:
                    self._remove(r.signal_id, r.signal_type)  # idempotent if the row is seen twice
                    row = values[r.signal_id]
                    self._add(row.id, row.bank_id, row.signal_type, row.value)
                elif r.op == "remove":
                    self._remove(r.signal_id, r.signal_type)
                self.applied.add(r.id)
                self.last_log_id = max(self.last_log_id, r.id)
            self.applied = {i for i in self.applied if i > self.last_log_id - _LOG_WINDOW}
            return len(new)

    def stats(self) -> dict[str, dict[str, float | int]]:
        """Per registered signal type, in registry order."""
        with self.lock:
            return {st.name: self.index(st.name).stats() for st in all_signals()}


_INDEXES: dict[str, MatchIndexes] = {}
_GLOBAL_LOCK = threading.Lock()


def get_indexes(settings: Settings | None = None) -> MatchIndexes:
    """The process-wide indexes for this database (one per URL, so tests on temporary stores stay apart)."""
    url = (settings or get_settings()).db_url
    with _GLOBAL_LOCK:
        idx = _INDEXES.get(url)
        if idx is None:
            idx = _INDEXES[url] = MatchIndexes()
        return idx


def reset_indexes() -> None:
    with _GLOBAL_LOCK:
        _INDEXES.clear()


def load_in_background(settings: Settings | None = None) -> threading.Thread:
    """Rebuild the indexes from the store when the service starts, off the request path, so the first lookup
    does not pay for loading millions of hashes (a lookup before it finishes waits on the index lock)."""
    from deepshield.matching.storage.sql import SqlMatchStore
    from deepshield.store.db import session_scope

    settings = settings or get_settings()

    def run() -> None:
        try:
            with session_scope(settings) as s:
                get_indexes(settings).sync(SqlMatchStore(s))
        except Exception:  # the next lookup loads the index itself; a failed warm-up only costs time
            logging.getLogger("deepshield.matching").exception("loading the match indexes at start failed")

    t = threading.Thread(target=run, name="match-index-load", daemon=True)
    t.start()
    return t
