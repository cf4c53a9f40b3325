"""The two things cases needs from other domains, as small interfaces.

`HashBank` is Match's bank (add a hash with its case, remove every hash of a case, look a hash up);
`Screener` is one upload check (bank match, labels, detector). `adapters.py` implements them with Match,
Labels and Detect; tests swap in an in-memory bank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from deepshield.errors import DeepshieldError
from deepshield.jsontypes import JsonObject

#: Upload policy outcomes, strongest first.
DECISIONS = ("block", "review", "label", "allow")


@dataclass(frozen=True)
class BankMatch:
    signal: str
    value: str
    case_id: str | None
    distance: int
    bank: str = "cases"
    metadata: JsonObject = field(default_factory=dict)


@runtime_checkable
class HashBank(Protocol):
    def add(self, value: str, signal: str, case_id: str, metadata: JsonObject | None = None) -> None: ...

    def remove_case(self, case_id: str) -> int:
        """Remove every hash of the case from every bank; returns how many were removed."""
        ...

    def lookup(self, value: str, signal: str, max_distance: int = 0) -> list[BankMatch]: ...


@dataclass
class Finding:
    """One screener's opinion on an upload: a proposed decision and the reason a person can read."""

    screener: str
    decision: str  # one of DECISIONS
    reason: str
    data: JsonObject = field(default_factory=dict)


class ScreenerError(DeepshieldError):
    """A screener could not check the file. Screening turns it into the policy's `on_error` decision (review
    by default, or block): a check that did not happen is never a pass."""

    code = "screening_failed"

    def __init__(self, message: str, data: JsonObject | None = None) -> None:
        super().__init__(message)
        #: What the screener learnt before it failed (the detector's scan id), kept with the finding.
        self.data = data or {}


@runtime_checkable
class Screener(Protocol):
    name: str

    def screen(self, path: Path, hashes: dict[str, str]) -> Finding | None: ...


def strongest(findings: list[Finding]) -> str:
    order = {d: i for i, d in enumerate(DECISIONS)}
    return min((f.decision for f in findings), key=lambda d: order[d], default="allow")
