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


def claim(session: Session, case_id: str, who: str, *, now: dt.datetime | None = None) -> Case:
    """Take the case; claiming one's own case again is a no-op."""
    case = service.get_case(session, case_id)
    if case.state not in CLAIMABLE:
        raise NotClaimable(f"case {case.id} is {case.state}: there is nothing to work on")
    if case.assignee == who:
        return case
    now = now or utcnow()
    res = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.assignee.is_(None))
        .values(assignee=who, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(case)
    if res.rowcount != 1:  # type: ignore[attr-defined]
        raise _held_by_other(case, who)
    audit.record(session, actor=who, actor_kind="human", action="claimed", case_id=case.id, reason="claimed")
    return case


def assign(session: Session, case_id: str, assignee: str, *, lead: str, now: dt.datetime | None = None) -> Case:
    """A lead gives the case to a reviewer (taking it from whoever held it; the audit says from whom)."""
    case = service.get_case(session, case_id)
    if case.state not in CLAIMABLE:
        raise NotClaimable(f"case {case.id} is {case.state}: there is nothing to work on")
    if assignee not in reviewers(session):
        raise UnknownReviewer(f"{assignee!r} is not a reviewer: assign to one of {', '.join(reviewers(session))}")
    before = case.assignee
    session.execute(
        update(Case)
        .where(Case.id == case.id)
        .values(assignee=assignee, claimed_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=lead,
        actor_kind="human",
        action="assigned",
        case_id=case.id,
        reason=f"assigned to {assignee}" + (f" (was {before})" if before else ""),
        details={"assignee": assignee, "previous": before},
    )
    session.refresh(case)
    return case


def release(session: Session, case_id: str, who: str, *, lead: bool = False) -> Case:
    """Give the case back to the queue: its holder, or a lead for anyone."""
    case = service.get_case(session, case_id)
    if case.assignee is None:
        return case
    if case.assignee != who and not lead:
        raise _held_by_other(case, who)
    before = case.assignee
    session.execute(
        update(Case)
        .where(Case.id == case.id, Case.assignee == before)
        .values(assignee=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=who,
        actor_kind="human",
        action="released",
        case_id=case.id,
        reason=f"released (was claimed by {before})",
        details={"previous": before},
    )
    session.refresh(case)
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
