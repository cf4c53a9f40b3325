"""Banks as the console shows them, over Match's bank service: the banks with their counts, a bank's entries
(hash, source case, date), the matches an entry produced and the open cases they sit in, and removal of an
entry (audited on the entry's case)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from deepshield.cases import audit, matchhistory
from deepshield.cases.matchhistory import MatchRecord
from deepshield.cases.models import Case
from deepshield.cases.queue import OPEN_STATES
from deepshield.matching import service as match
from deepshield.matching.types import BankInfo, EntryInfo


@dataclass
class EntryMatches:
    entry: EntryInfo
    matches: list[MatchRecord]
    #: open cases the entry's matches sit in (what a bulk decision may act on)
    open_cases: list[str]


def banks(session: Session) -> list[BankInfo]:
    return match.list_banks(session)


def entries(session: Session, bank: str, limit: int = 100, offset: int = 0) -> tuple[BankInfo, list[EntryInfo]]:
    return match.get_bank(session, bank), match.list_entries(session, bank, limit=limit, offset=offset)


def entry_matches(session: Session, entry_id: int, radius: int) -> EntryMatches:
    """What one banked item's hashes matched, and the open cases among the hits."""
    e = match.get_entry(session, entry_id)
    recs: list[MatchRecord] = []
    for sig, value in sorted(e.signals.items()):
        recs += matchhistory.matches_of_hash(session, sig, value, e.case_id, radius)
    recs.sort(key=lambda r: r.at, reverse=True)
    found = {r.found_case for r in recs if r.found_case}
    open_cases = sorted(c for c in found if (case := session.get(Case, c)) is not None and case.state in OPEN_STATES)
    return EntryMatches(e, recs, open_cases)


def remove_entry(session: Session, entry_id: int, actor: str, reason: str) -> EntryInfo:
    """Take one item (all its hashes) out of its bank; the audit event sits on its source case."""
    e = match.get_entry(session, entry_id)
    match.remove_entry(session, entry_id)
    audit.record(
        session,
        actor=actor,
        actor_kind="human",
        action="bank_entry_removed",
        case_id=e.case_id if e.case_id and session.get(Case, e.case_id) is not None else None,
        reason=reason or "removed from the bank in the console",
        evidence=[v for s, v in e.signals.items() if s == "sha256"],
        details={"bank": e.bank, "entry": e.id, "signals": sorted(e.signals)},
    )
    return e
