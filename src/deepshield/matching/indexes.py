"""The process-wide in-memory indexes, kept in step with the store through its change log.

Every change to banked signals is written, in the same transaction, to `match_index_log`. Before each lookup
the indexes apply the log rows committed since the last one (one indexed query), so an add or a removal by
any process (API worker, CLI, the cases service) is visible to the very next lookup, and nothing that was
rolled back ever reaches memory. On first use the indexes are built from the store in one pass.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deepshield.config import Settings, get_settings
from deepshield.matching.bits import hex_to_words, hexes_to_words
from deepshield.matching.index import HammingIndex
from deepshield.matching.models import MatchIndexLog, MatchSignal
from deepshield.matching.signals.vpdq import FrameHash, VideoMatch, parse_vpdq, score_video_match, usable

#: Log rows are re-read this far back, so a transaction that took an earlier id but committed later
#: (possible on PostgreSQL) is still applied.
_LOG_WINDOW = 512
_WINDOW_SCAN_EVERY_S = 2.0
_LOAD_BATCH = 100_000


@dataclass
class ExactHit:
    key: int
    group: int


class ExactIndex:
    """Exact-copy hashes (MD5, SHA-256): a dictionary from value to the signals holding it."""

    def __init__(self) -> None:
        self._by_value: dict[str, dict[int, int]] = defaultdict(dict)
        self._value_of: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._value_of)

    def add(self, value: str, key: int, group: int) -> None:
        self._by_value[value][key] = group
        self._value_of[key] = value

    def remove(self, key: int) -> None:
        v = self._value_of.pop(key, None)
        if v is not None:
            d = self._by_value.get(v)
            if d is not None:
                d.pop(key, None)
                if not d:
                    del self._by_value[v]

    def search(self, value: str) -> list[ExactHit]:
        return [ExactHit(k, g) for k, g in self._by_value.get(value, {}).items()]


@dataclass
class VideoHit:
    key: int
    group: int
    match: VideoMatch


class VideoIndex:
    """vPDQ: every usable frame hash in one Hamming index (key = signal id, aux = frame time in ms)."""

    def __init__(self) -> None:
        self.frames = HammingIndex()
        self.n_frames: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.n_frames)

    def add(self, key: int, group: int, frames: list[FrameHash]) -> None:
        good = usable(frames)
        if not good:
            return
        self.frames.add_many(
            hexes_to_words([f.hash for f in good]),
            np.full(len(good), key, dtype=np.int64),
            group,
            np.array([round(f.timestamp * 1000) for f in good], dtype=np.int32),
        )
        self.n_frames[key] = len(good)

    def remove(self, key: int) -> None:
        if self.n_frames.pop(key, None) is not None:
            self.frames.remove(key)

    def search(self, query: list[FrameHash], threshold: int, group_thresholds: np.ndarray) -> list[VideoHit]:
        q = usable(query)
        per_key: dict[int, tuple[int, set[float], set[float], list[int]]] = {}
        for f in q:
            for h in self.frames.search(hex_to_words(f.hash), threshold, group_thresholds):
                g, qt, bt, best = per_key.setdefault(h.key, (h.group, set(), set(), [256]))
                qt.add(f.timestamp)
                bt.add(h.aux / 1000.0)
                best[0] = min(best[0], h.distance)
        out = []
        for key, (g, qt, bt, best) in per_key.items():
            m = score_video_match(sorted(qt), len(q), sorted(bt), self.n_frames.get(key, len(bt)), best[0])
            if m.matched:
                out.append(VideoHit(key, g, m))
        return out


@dataclass
class MatchIndexes:
    pdq: HammingIndex = field(default_factory=HammingIndex)
    vpdq: VideoIndex = field(default_factory=VideoIndex)
    exact: dict[str, ExactIndex] = field(default_factory=lambda: {"md5": ExactIndex(), "sha256": ExactIndex()})
    loaded: bool = False
    loaded_max_signal_id: int = 0
    last_log_id: int = 0
    applied: set[int] = field(default_factory=set)
    last_window_scan: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock)

    # ---- updates ----------------------------------------------------------------------------------------

    def _add(self, sid: int, bank_id: int, signal_type: str, value: str) -> None:
        if signal_type == "pdq":
            self.pdq.add(hex_to_words(value), sid, bank_id)
        elif signal_type == "vpdq":
            self.vpdq.add(sid, bank_id, parse_vpdq(value))
        elif signal_type in self.exact:
            self.exact[signal_type].add(value, sid, bank_id)

    def _remove(self, sid: int, signal_type: str) -> None:
        if signal_type == "pdq":
            self.pdq.remove(sid)
        elif signal_type == "vpdq":
            self.vpdq.remove(sid)
        elif signal_type in self.exact:
            self.exact[signal_type].remove(sid)

    def load(self, session: Session) -> None:
        """Build everything from the store in one pass (start-up)."""
        with self.lock:
            self.last_log_id = int(session.scalar(select(func.max(MatchIndexLog.id))) or 0)
            pdq_words: list[np.ndarray] = []
            pdq_keys: list[np.ndarray] = []
            pdq_groups: list[np.ndarray] = []
            hexes: list[str] = []
            keys: list[int] = []
            groups: list[int] = []
            max_sid = 0

            def flush() -> None:
                if hexes:
                    pdq_words.append(hexes_to_words(hexes))
                    pdq_keys.append(np.array(keys, dtype=np.int64))
                    pdq_groups.append(np.array(groups, dtype=np.int32))
                    hexes.clear()
                    keys.clear()
                    groups.clear()

            stmt = select(MatchSignal.id, MatchSignal.bank_id, MatchSignal.signal_type, MatchSignal.value).order_by(
                MatchSignal.id
            )
            for sid, bank_id, st, value in session.execute(stmt.execution_options(yield_per=_LOAD_BATCH)):
                max_sid = max(max_sid, sid)
                if st == "pdq":
                    hexes.append(value)
                    keys.append(sid)
                    groups.append(bank_id)
                    if len(hexes) >= _LOAD_BATCH:
                        flush()
                else:
                    self._add(sid, bank_id, st, value)
            flush()
            if pdq_words:
                codes = np.concatenate(pdq_words)
                self.pdq = HammingIndex(initial_capacity=codes.shape[0] + 4096)
                self.pdq.add_many(codes, np.concatenate(pdq_keys), np.concatenate(pdq_groups))
            self.loaded_max_signal_id = max_sid
            self.loaded = True

    def sync(self, session: Session) -> int:
        """Apply committed changes since the last call; returns how many log rows were applied."""
        with self.lock:
            if not self.loaded:
                self.load(session)
                return 0
            # Usually only ids above the last one seen; every few seconds also a window below it, for
            # transactions that took an earlier id but committed later (PostgreSQL).
            now = time.monotonic()
            if now - self.last_window_scan >= _WINDOW_SCAN_EVERY_S:
                floor = max(0, self.last_log_id - _LOG_WINDOW)
                self.last_window_scan = now
            else:
                floor = self.last_log_id
            rows = session.execute(
                select(MatchIndexLog.id, MatchIndexLog.op, MatchIndexLog.signal_id, MatchIndexLog.signal_type)
                .where(MatchIndexLog.id > floor)
                .order_by(MatchIndexLog.id)
            ).all()
            new = [r for r in rows if r[0] not in self.applied]
            if not new:
                return 0
            add_ids = [sid for _, op, sid, _ in new if op == "add" and sid > self.loaded_max_signal_id]
            values: dict[int, tuple[int, str, str]] = {}
            for i in range(0, len(add_ids), 900):
                chunk = add_ids[i : i + 900]
                for sid, bank_id, st, value in session.execute(
                    select(MatchSignal.id, MatchSignal.bank_id, MatchSignal.signal_type, MatchSignal.value).where(
                        MatchSignal.id.in_(chunk)
                    )
                ):
                    values[sid] = (bank_id, st, value)
            for log_id, op, sid, st in new:
                if op == "add" and sid in values:
                    self._remove(sid, st)  # idempotent if the row is seen twice
                    bank_id, st2, value = values[sid]
                    self._add(sid, bank_id, st2, value)
                elif op == "remove":
                    self._remove(sid, st)
                self.applied.add(log_id)
                self.last_log_id = max(self.last_log_id, log_id)
            self.applied = {i for i in self.applied if i > self.last_log_id - _LOG_WINDOW}
            return len(new)

    def stats(self) -> dict[str, dict[str, float | int]]:
        return {
            "pdq": self.pdq.stats(),
            "vpdq": {"videos": len(self.vpdq), **self.vpdq.frames.stats()},
            **{k: {"hashes": len(v)} for k, v in self.exact.items()},
        }


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
