"""Append-only, hash-chained audit trail.

Every event's hash covers all its fields and the previous event's hash, so editing, deleting or reordering any
event breaks the chain. Appending first locks the single `audit_head` row (an UPDATE), which serialises
writers
across threads and processes on SQLite and PostgreSQL alike; the event is written in the caller's transaction,
so a state change and its audit event commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from deepshield.cases.models import AuditEvent, AuditHead, strip_nul
from deepshield.store.timeutil import utcnow

GENESIS = "0" * 64
ACTOR_KINDS = ("human", "automated")


def _canonical(ev: dict[str, Any]) -> bytes:
    return json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


#: The columns an event's hash covers: all but the hash itself.
HASHED_FIELDS = ("seq", "case_id", "actor", "actor_kind", "at", "action", "reason", "evidence", "details", "prev_hash")


def event_hash(ev: AuditEvent, prev_hash: str | None = None) -> str:
    """One function for writing and verifying, so the two cannot disagree on what the hash covers. With
    `prev_hash`, the hash the event would have if linked to that hash instead of its own `prev_hash` (to
    recompute a chain whose rows were rewritten)."""
    fields = {f: getattr(ev, f) for f in HASHED_FIELDS}
    if prev_hash is not None:
        fields["prev_hash"] = prev_hash
    return hashlib.sha256(_canonical(fields)).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    actor_kind: str,
    action: str,
    reason: str = "",
    case_id: str | None = None,
    evidence: Iterable[str] = (),
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (commit with the change it describes)."""
    if actor_kind not in ACTOR_KINDS:
        raise ValueError(f"actor_kind must be one of {ACTOR_KINDS}")
    # Lock the head row first: concurrent appenders wait here, then see the newest head.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
    seq, prev = int(head.seq), str(head.hash)
    # Hash exactly what the database will hold (NUL characters are dropped on the way in).
    ev = AuditEvent(
        seq=seq,
        case_id=strip_nul(case_id),
        actor=strip_nul(actor),
        actor_kind=actor_kind,
        at=utcnow().isoformat(timespec="microseconds"),
        action=strip_nul(action),
        reason=strip_nul(reason),
        evidence=strip_nul(json.dumps(sorted(set(evidence)))),
        details=strip_nul(json.dumps(details or {}, sort_keys=True, default=str)),
        prev_hash=prev,
    )
    ev.hash = event_hash(ev)
    session.add(ev)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=ev.hash))
    session.flush()
    return ev


@dataclass
class VerifyResult:
    events: int
    head_hash: str
    problems: list[str] = field(default_factory=list)
    #: The seq of the last event walked (0 when none).
    last_seq: int = 0
    #: For each watched seq that exists: the hash the chain recomputes to there (every event's content, each linked to
    #: the hash recomputed before it, whatever the rows' own prev_hash say) and how many events were walked up to it:
    #: what a checkpoint of that seq must match.
    at_seq: dict[int, tuple[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    session: Session,
    batch: int = 5000,
    *,
    watch: Collection[int] = (),
    start: tuple[int, str] = (0, GENESIS),
    upto: int | None = None,
) -> VerifyResult:
    """Walk the chain in order: gaps mean deletion, a wrong prev_hash means reordering or deletion, a wrong
    hash means an edited event; the head row must name the last event (catches a deleted tail).

    A chain rewritten whole (every later hash recomputed, the head row updated) passes this walk: only signed
    checkpoints kept elsewhere catch that (`cases.checkpoints`), and they read the hashes at `watch` from here.
    `start` (seq, hash) walks only the events after a trusted point and `upto` stops at a seq (the head the
    caller read) without checking the head row, which may have moved since."""
    problems: list[str] = []
    after, prev = start
    recomputed = prev
    expected_seq = after + 1
    count = 0
    last_seq = after
    at_seq: dict[int, tuple[str, int]] = {}
    watched = set(watch)
    while True:
        q = select(AuditEvent).where(AuditEvent.seq > after)
        if upto is not None:
            q = q.where(AuditEvent.seq <= upto)
        rows = list(session.scalars(q.order_by(AuditEvent.seq).limit(batch)))
        if not rows:
            break
        for ev in rows:
            count += 1
            if ev.seq != expected_seq:
                problems.append(f"event {ev.seq}: expected seq {expected_seq} (event(s) deleted)")
            if ev.prev_hash != prev:
                problems.append(f"event {ev.seq}: prev_hash does not match the previous event (deleted or reordered)")
            h = event_hash(ev)
            if h != ev.hash:
                problems.append(f"event {ev.seq}: content does not match its hash (edited)")
            recomputed = h if ev.prev_hash == recomputed else event_hash(ev, prev_hash=recomputed)
            if ev.seq in watched:
                at_seq[ev.seq] = (recomputed, count)
            prev = ev.hash
            expected_seq = ev.seq + 1
            last_seq = ev.seq
        after = rows[-1].seq
    head = session.get(AuditHead, 1) if upto is None else None
    if head is not None:
        if head.seq != last_seq:
            problems.append(f"head says {head.seq} events but the last event is {last_seq} (tail deleted)")
        elif head.hash != prev:
            problems.append("head hash does not match the last event (last event edited or replaced)")
    return VerifyResult(events=count, head_hash=prev, problems=problems, last_seq=last_seq, at_seq=at_seq)


def events_for_case(session: Session, case_id: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)))
