"""A hash bank in memory: the test double for Match's banks, so case tests run without the index."""

from __future__ import annotations

import threading
from typing import Any

from deepshield.cases.ports import BankMatch
from deepshield.matching.bits import hamming


class MemoryHashBank:
    """Exact lookups, and PDQ within a Hamming distance; adds are idempotent per (signal, value, case)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def add(self, value: str, signal: str, case_id: str, metadata: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._rows.setdefault((signal, value.lower()), {})[case_id] = dict(metadata or {})

    def remove_case(self, case_id: str) -> int:
        n = 0
        with self._lock:
            for key in list(self._rows):
                if self._rows[key].pop(case_id, None) is not None:
                    n += 1
                if not self._rows[key]:
                    del self._rows[key]
        return n

    def lookup(self, value: str, signal: str, max_distance: int = 0) -> list[BankMatch]:
        value = value.lower()
        out: list[BankMatch] = []
        with self._lock:
            if signal == "pdq" and max_distance > 0:
                items = [(k, v) for k, v in self._rows.items() if k[0] == "pdq"]
            else:
                items = [((signal, value), self._rows.get((signal, value), {}))]
            for (sig, val), cases in items:
                d = hamming(val, value) if sig == "pdq" else 0
                if d <= max_distance:
                    out.extend(BankMatch(sig, val, cid, d, metadata=meta) for cid, meta in cases.items())
        return out
