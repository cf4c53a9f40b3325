"""Queries and state changes on cases. Every change is a conditional UPDATE on (id, version) plus a
timeline row
and an audit event in the same transaction, so a lost race is a typed 409 and never a double action."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from deepshield.cases import audit, pins
from deepshield.cases.deadlines import Deadline, deadline
from deepshield.cases.models import Case, CaseAction, CaseMedia, CaseTransition, VictimHash
from deepshield.cases.policy import CasesPolicy
from deepshield.cases.statemachine import OPEN_FOR_DECISION, WORK_LEFT, ConcurrentUpdate, State, check_transition
from deepshield.cases.validity import ReportFields, check_validity
from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.store.timeutil import as_utc, utcnow


class CaseNotFound(DeepshieldError):
    code = "not_found"
    http_status = 404


class IdempotencyMismatch(DeepshieldError):
    code = "idempotency_key_reused"
    http_status = 422


_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read over the phone


def new_case_id() -> str:
    r = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"DS-{r[:4]}-{r[4:]}"


def get_case(session: Session, case_id: str) -> Case:
    case = session.get(Case, case_id.strip().upper())
    if case is None:
        raise CaseNotFound(f"no case {case_id!r}")
    return case


def case_hashes(session: Session, case_id: str) -> list[tuple[str, str]]:
    """(signal, value) of every media file and live victim hash of the case."""
    out: set[tuple[str, str]] = set()
    for m in session.scalars(select(CaseMedia).where(CaseMedia.case_id == case_id)):
        out.update(json.loads(m.hashes).items())
    for v in session.scalars(select(VictimHash).where(VictimHash.case_id == case_id, VictimHash.removed_at.is_(None))):
        out.add((v.signal, v.value))
    return sorted(out)


def banked_hash_count(session: Session, case: Case) -> int:
    """How many of the case's hashes stand in the bank now. The victim's own go in as they are added; once a
    moderator banks the case (a `bank` action not reversed), every media hash of the case is in too. A withdrawn
    case has none left (the withdrawal removed them from every bank)."""
    if case.withdrawn_at is not None:
        return 0
    banked = session.scalar(
        select(CaseAction.id)
        .where(CaseAction.case_id == case.id, CaseAction.kind == "bank", CaseAction.reversed_at.is_(None))
        .limit(1)
    )
    if banked is not None:
        return len(case_hashes(session, case.id))
    live = select(VictimHash.id).where(VictimHash.case_id == case.id, VictimHash.removed_at.is_(None))
    return len(list(session.scalars(live)))


def find_by_idempotency(session: Session, key: str) -> Case | None:
    return session.scalar(select(Case).where(Case.idempotency_key == key))


def create_case(
    session: Session,
    fields: ReportFields,
    *,
    source: str,
    submitted_by: str,
    actor_kind: str,
    policy: CasesPolicy,
    settings: Settings,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Case, str]:
    """Record a notice (state `received`) and check it at once: `valid` (clock starts) or `needs_info`.
    Returns the case and its PIN (the PIN is stored only as a hash)."""
    f = fields.normalised()
    now = now or utcnow()
    case_id = new_case_id()
    secret = pins.case_secret(settings)
    pin = pins.derive_pin(secret, case_id)
    case = Case(
        id=case_id,
        version=1,
        state=State.RECEIVED.value,
        source=source,
        submitted_by=submitted_by,
        idempotency_key=idempotency_key,
        request_hash=f.digest(),
        **_notice_columns(f),
        missing=json.dumps([m.to_dict() for m in check_validity(f)]),
        pin_hash=pins.pin_hash(secret, case_id, pin),
        received_at=now,
    )
    session.add(case)
    session.add(
        CaseTransition(
            case_id=case_id,
            from_state=None,
            to_state=State.RECEIVED.value,
            at=now,
            actor=submitted_by,
            actor_kind=actor_kind,
            reason=f"notice received via {source}",
        )
    )
    session.flush()
    audit.record(
        session,
        actor=submitted_by,
        actor_kind=actor_kind,
        action="report_received",
        case_id=case_id,
        reason=f"notice received via {source}",
        details={"category": case.category, "fields": f.digest()},
    )
    _revalidate(session, case, f, policy, actor="intake", now=now, stored=True)
    return case, pin


def create_screening_case(
    session: Session,
    *,
    upload_id: str,
    content_ref: str,
    submitted_by: str,
    why: str,
    policy: CasesPolicy,
    now: dt.datetime | None = None,
) -> Case:
    """A case opened by upload screening for a person to review. There is no notice and no reporter (so no
    PIN), and the clock runs from now under the `other` category's rule."""
    now = now or utcnow()
    notice = ReportFields(content_locations=[content_ref or f"upload:{upload_id}"], explanation=why, good_faith=True)
    case = Case(
        id=new_case_id(),
        version=1,
        state=State.RECEIVED.value,
        source="screening",
        submitted_by=submitted_by,
        **_notice_columns(notice),  # category "other", no reporter
        missing="[]",
        pin_hash="!",  # matches no PIN hash: nobody signs in to a screening case
        received_at=now,
    )
    session.add(case)
    session.flush()
    return transition(
        session,
        case,
        State.VALID,
        actor="screening",
        actor_kind="automated",
        reason=f"queued for review by upload screening: {why}",
        extra={"valid_at": now, "due_at": policy.due(now, "other", "")},
        now=now,
    )


def _revalidate(
    session: Session,
    case: Case,
    f: ReportFields,
    policy: CasesPolicy,
    actor: str,
    now: dt.datetime,
    stored: bool = False,
) -> None:
    """Check the notice and move it to `valid` (clock starts) or `needs_info`; `stored`: the case row already
    holds this result (a new case), so skip the UPDATE."""
    missing = check_validity(f)
    if not stored:
        session.execute(
            update(Case).where(Case.id == case.id).values(missing=json.dumps([m.to_dict() for m in missing]))
        )
        session.refresh(case)
    if missing:
        if case.state != State.NEEDS_INFO.value:
            transition(
                session,
                case,
                State.NEEDS_INFO,
                actor=actor,
                actor_kind="automated",
                reason="incomplete notice: " + "; ".join(m.field for m in missing),
                now=now,
            )
    else:
        due = policy.due(now, f.category, f.jurisdiction)
        transition(
            session,
            case,
            State.VALID,
            actor=actor,
            actor_kind="automated",
            reason=f"valid notice; decision due by {due.isoformat(timespec='minutes')}",
            extra={"valid_at": now, "due_at": due},
            now=now,
        )


def _notice_columns(f: ReportFields) -> dict[str, Any]:
    """The case columns a (normalised) notice fills, one mapping for creating a case and for supplying info."""
    return asdict(f) | {
        "category": f.category or "other",
        "jurisdiction": f.jurisdiction[:8],
        "content_locations": json.dumps(f.content_locations),
    }


def fields_of(case: Case) -> ReportFields:
    """The notice back from its columns (each field has the column of its name; the URLs are stored as JSON)."""
    facts = {k.name: getattr(case, k.name) for k in dataclass_fields(ReportFields)}
    return ReportFields(**facts | {"content_locations": json.loads(case.content_locations)})


def supply_info(
    session: Session, case_id: str, updates: Mapping[str, object], actor: str, actor_kind: str, policy: CasesPolicy
) -> Case:
    """Fill in what a `needs_info` notice lacked, then check it again."""
    case = get_case(session, case_id)
    if case.state not in (State.RECEIVED.value, State.NEEDS_INFO.value):
        raise DeepshieldError(f"case {case.id} is {case.state}: information can only be added while it needs info")
    f = fields_of(case)
    for k, v in updates.items():
        if v is None or not hasattr(f, k):
            continue
        setattr(f, k, v)
    f = f.normalised()
    session.execute(update(Case).where(Case.id == case.id).values(**_notice_columns(f)))
    session.refresh(case)
    audit.record(
        session,
        actor=actor,
        actor_kind=actor_kind,
        action="info_supplied",
        case_id=case.id,
        reason="fields: " + ", ".join(sorted(k for k, v in updates.items() if v is not None)),
    )
    _revalidate(session, case, f, policy, actor=actor, now=utcnow())
    return case


def transition(
    session: Session,
    case: Case,
    target: State,
    *,
    actor: str,
    actor_kind: str,
    reason: str,
    expected_version: int | None = None,
    extra: Mapping[str, object] | None = None,  # more columns to set with the state (valid_at, due_at, ...)
    evidence: list[str] | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """Move a case, or raise ConcurrentUpdate when its version moved on since the caller looked."""
    now = now or utcnow()
    version = case.version if expected_version is None else expected_version
    if expected_version is not None and case.version != expected_version:
        raise ConcurrentUpdate(
            f"case {case.id} changed since you opened it (version {case.version}, "
            f"you had {expected_version}): reload it"
        )
    check_transition(case.state, target.value)
    res = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == version, Case.state == case.state)
        .values(state=target.value, version=version + 1, **(extra or {}))
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentUpdate(f"case {case.id} was changed by someone else at the same moment: reload it")
    session.add(
        CaseTransition(
            case_id=case.id,
            from_state=case.state,
            to_state=target.value,
            at=now,
            actor=actor,
            actor_kind=actor_kind,
            reason=reason,
        )
    )
    audit.record(
        session,
        actor=actor,
        actor_kind=actor_kind,
        action=f"state:{target.value}",
        case_id=case.id,
        reason=reason,
        evidence=evidence or (),
        details={"from": case.state, "version": version + 1},
    )
    session.refresh(case)
    return case


def timeline(session: Session, case_id: str) -> list[CaseTransition]:
    return list(
        session.scalars(select(CaseTransition).where(CaseTransition.case_id == case_id).order_by(CaseTransition.id))
    )


def state_times(session: Session, case_id: str) -> dict[str, dt.datetime]:
    """The (latest) time each state was entered."""
    out: dict[str, dt.datetime] = {}
    for t in timeline(session, case_id):
        at = as_utc(t.at)
        assert at is not None
        out[t.to_state] = at
    return out


def queue(
    session: Session,
    policy: CasesPolicy,
    limit: int = 200,
    states: tuple[str, ...] | None = None,
    now: dt.datetime | None = None,
) -> list[tuple[Case, Deadline]]:
    """Open cases, least time left first (breached at the top); cases without a clock after them."""
    states = states or WORK_LEFT
    # Cases on the clock first (one query each way: NULL ordering differs between SQLite and PostgreSQL).
    decide = [st for st in states if st in OPEN_FOR_DECISION]
    others = [st for st in states if st not in OPEN_FOR_DECISION]
    rows = list(
        session.scalars(select(Case).where(Case.state.in_(decide)).order_by(Case.due_at, Case.received_at).limit(limit))
    )
    if len(rows) < limit and others:
        rows += session.scalars(
            select(Case).where(Case.state.in_(others)).order_by(Case.received_at).limit(limit - len(rows))
        )
    now = now or utcnow()
    items = [(c, deadline(c, policy, now)) for c in rows]
    far = dt.datetime.max.replace(tzinfo=dt.UTC)

    def key(item: tuple[Case, Deadline]) -> tuple[int, dt.datetime, dt.datetime]:
        c, d = item
        rank = 0 if c.state in OPEN_FOR_DECISION else (1 if c.state == State.APPEALED.value else 2)
        return rank, d.due_at or far, as_utc(c.received_at) or far

    return sorted(items, key=key)[:limit]


def media_dir(settings: Settings, case_id: str) -> Path:
    d = settings.home / "cases" / case_id
    d.mkdir(parents=True, exist_ok=True)
    return d
