"""Who works a case: a reviewer claims it (or a lead assigns it), and releases it. A claim is a conditional
UPDATE (only while nobody else holds it), so two reviewers claiming at once get one claim and one typed 409;
every claim, assignment and release is an audit event in the same transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from deepshield.accounts.models import User
from deepshield.cases import audit, service
from deepshield.cases.models import Case
from deepshield.cases.statemachine import OPEN_FOR_DECISION, ConcurrentUpdate, State
from deepshield.errors import DeepshieldError
from deepshield.store.timeutil import utcnow

#: States a reviewer can hold a case in (work is still to be done on it).
CLAIMABLE = frozenset({*OPEN_FOR_DECISION, State.APPEALED, State.REVERSED, State.NEEDS_INFO, State.RECEIVED})


class ClaimConflict(ConcurrentUpdate):
    """Someone else holds the case: the message names them, so the reviewer picks another case (a conflict
    like a lost race, with its own code)."""

    code = "claimed_by_other"
    http_status = 409


class NotClaimable(DeepshieldError):
    code = "not_claimable"
    http_status = 409


class UnknownReviewer(DeepshieldError):
    code = "unknown_reviewer"
    http_status = 422


def reviewers(session: Session) -> list[str]:
    """Who a case can be assigned to: signed-in reviewers and admins."""
    return list(
        session.scalars(select(User.username).where(User.role.in_(("reviewer", "admin"))).order_by(User.username))
    )


class NothingToClaim(DeepshieldError):
    code = "queue_empty"
    http_status = 404


def _held_by_other(case: Case, who: str) -> ClaimConflict:
    since = case.claimed_at.strftime("%Y-%m-%d %H:%M UTC") if case.claimed_at else "earlier"
    return ClaimConflict(f"case {case.id} is claimed by {case.assignee} (since {since}): pick another case")


def check_not_held_by_other(case: Case, who: str) -> None:
    """Raise when a person other than `who` holds the case (deciding someone else's case is a conflict)."""
    if case.assignee and case.assignee != who:
        raise _held_by_other(case, who)


def _set_holder(
    session: Session,
    case: Case,
    holder: str | None,
    *,
    held_by: str | None | bool,
    actor: str,
    action: str,
    reason: str,
    now: dt.datetime | None = None,
) -> bool:
    """Set who holds the case, only while `held_by` still holds it (False: whoever does), with its audit event
    in the same transaction. Returns False when someone else got there first."""
    cond = [Case.id == case.id]
    if held_by is not False:
        cond.append(Case.assignee.is_(None) if held_by is None else Case.assignee == held_by)
    res = session.execute(
        update(Case)
        .where(*cond)
        .values(assignee=holder, claimed_at=(now or utcnow()) if holder else None)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount == 1:  # type: ignore[attr-defined]
        before = case.assignee
        details = {"assignee": holder, "previous": before}
        audit.record(
            session, actor=actor, actor_kind="human", action=action, case_id=case.id, reason=reason, details=details
        )
    session.refresh(case)
    return res.rowcount == 1  # type: ignore[attr-defined]


def _open(session: Session, case_id: str) -> Case:
    case = service.get_case(session, case_id)
    if case.state not in CLAIMABLE:
        raise NotClaimable(f"case {case.id} is {case.state}: there is nothing to work on")
    return case


def claim(session: Session, case_id: str, who: str, *, now: dt.datetime | None = None) -> Case:
    """Take the case; claiming one's own case again is a no-op."""
    case = _open(session, case_id)
    if case.assignee == who:
        return case
    if not _set_holder(session, case, who, held_by=None, actor=who, action="claimed", reason="claimed", now=now):
        raise _held_by_other(case, who)
    return case


def assign(session: Session, case_id: str, assignee: str, *, lead: str, now: dt.datetime | None = None) -> Case:
    """A lead gives the case to a reviewer (taking it from whoever held it; the audit says from whom)."""
    case = _open(session, case_id)
    if assignee not in reviewers(session):
        raise UnknownReviewer(f"{assignee!r} is not a reviewer: assign to one of {', '.join(reviewers(session))}")
    why = f"assigned to {assignee}" + (f" (was {case.assignee})" if case.assignee else "")
    _set_holder(session, case, assignee, held_by=False, actor=lead, action="assigned", reason=why, now=now)
    return case


def release(session: Session, case_id: str, who: str, *, lead: bool = False) -> Case:
    """Give the case back to the queue: its holder, or a lead for anyone."""
    case = service.get_case(session, case_id)
    if case.assignee is None:
        return case
    if case.assignee != who and not lead:
        raise _held_by_other(case, who)
    why = f"released (was claimed by {case.assignee})"
    _set_holder(session, case, None, held_by=case.assignee, actor=who, action="released", reason=why)
    return case


def claim_next(session: Session, who: str) -> Case:
    """The unclaimed case (or one already mine) on the clock with the least time left, claimed; a lost race
    moves on to the next one."""
    rows = session.scalars(
        select(Case)
        .where(
            Case.state.in_([s.value for s in OPEN_FOR_DECISION]),
            or_(Case.assignee.is_(None), Case.assignee == who),
        )
        .order_by(Case.due_at, Case.received_at)
        .limit(50)
    )
    for case in list(rows):
        try:
            return claim(session, case.id, who)
        except ClaimConflict:
            continue
    raise NothingToClaim("no unclaimed case is waiting for a decision")
