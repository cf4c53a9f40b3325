"""The reviewer's queue with search and filters: open cases (least time left first) or closed ones (newest
decision first), narrowed by case number, URL or text, category, state, deadline, jurisdiction and who holds
them. The ordering of open cases is `service.queue`'s; this module only narrows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from deepshield.cases import service
from deepshield.cases.deadlines import Deadline, deadline
from deepshield.cases.models import Case
from deepshield.cases.policy import CasesPolicy
from deepshield.cases.statemachine import DONE, WORK_LEFT
from deepshield.store.timeutil import utcnow

OPEN_STATES = WORK_LEFT
CLOSED_STATES = DONE
DEADLINE_FILTERS = {"overdue": ("breached",), "due_soon": ("warning", "breached")}
ASSIGNED_FILTERS = ("", "me", "unassigned")


@dataclass(frozen=True)
class QueueFilter:
    """What the reviewer narrowed the queue to; empty strings mean "any"."""

    text: str = ""
    category: str = ""
    state: str = ""
    deadline: str = ""  # overdue, due_soon
    jurisdiction: str = ""
    assigned: str = ""  # me, unassigned
    closed: bool = False

    @property
    def active(self) -> bool:
        return any((self.text, self.category, self.state, self.deadline, self.jurisdiction, self.assigned))


def _conditions(f: QueueFilter, me: str) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    text = f.text.strip()
    if text:
        like = f"%{text.lower()}%"
        conds.append(
            or_(
                func.lower(Case.id).like(like),
                func.lower(Case.content_locations).like(like),
                func.lower(Case.explanation).like(like),
            )
        )
    if f.category:
        conds.append(Case.category == f.category)
    if f.jurisdiction:
        conds.append(func.upper(Case.jurisdiction) == f.jurisdiction.strip().upper())
    if f.assigned == "me":
        conds.append(Case.assignee == me)
    elif f.assigned == "unassigned":
        conds.append(Case.assignee.is_(None))
    return conds


def search(
    session: Session,
    policy: CasesPolicy,
    f: QueueFilter,
    me: str,
    limit: int = 300,
    now: dt.datetime | None = None,
) -> list[tuple[Case, Deadline]]:
    now = now or utcnow()
    pool = CLOSED_STATES if f.closed else OPEN_STATES
    states = tuple(s for s in pool if not f.state or s == f.state)
    if not states:
        return []
    conds = _conditions(f, me)
    if f.closed:
        rows = session.scalars(
            select(Case)
            .where(Case.state.in_(states), *conds)
            .order_by(func.coalesce(Case.decided_at, Case.received_at).desc())  # withdrawn: never decided
            .limit(limit)
        )
        items = [(c, deadline(c, policy, now)) for c in rows]
    elif not conds:
        items = service.queue(session, policy, limit=limit, states=states, now=now)
    else:
        ids = set(session.scalars(select(Case.id).where(Case.state.in_(states), *conds).limit(5000)))
        items = [it for it in service.queue(session, policy, limit=5000, states=states, now=now) if it[0].id in ids]
    levels = DEADLINE_FILTERS.get(f.deadline)
    if levels:
        items = [it for it in items if it[1].level in levels]
    return items[:limit]
