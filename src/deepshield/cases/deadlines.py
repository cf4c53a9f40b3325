"""Deadlines: how much time a case has left, and the sweep that announces each case once when its deadline
gets close and once when it passes. Apart from the flows so the clock's rules read in one place."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update

from deepshield.cases import audit, webhooks
from deepshield.cases.models import Case
from deepshield.cases.policy import CasesPolicy
from deepshield.cases.statemachine import OPEN_FOR_DECISION, State
from deepshield.config import Settings
from deepshield.store.db import session_scope
from deepshield.store.timeutil import as_utc, utcnow


@dataclass
class Deadline:
    due_at: dt.datetime | None
    seconds_left: float | None
    level: str  # none, ok, warning, breached, met, missed

    @property
    def label(self) -> str:
        if self.seconds_left is None:
            return {"met": "decided in time", "missed": "decided late"}.get(self.level, "no clock")
        s = abs(self.seconds_left)
        txt = f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"
        return f"overdue by {txt}" if self.seconds_left < 0 else f"{txt} left"


def deadline(case: Case, policy: CasesPolicy, now: dt.datetime | None = None) -> Deadline:
    """Breaches show before they happen: `warning` once less than warn_fraction of the window is left."""
    now = now or utcnow()
    due, valid_at, decided = as_utc(case.due_at), as_utc(case.valid_at), as_utc(case.decided_at)
    if due is None or valid_at is None:
        return Deadline(None, None, "none")
    if case.state not in OPEN_FOR_DECISION:
        if decided is None:
            return Deadline(due, None, "none")
        return Deadline(due, None, "met" if decided <= due else "missed")
    left = (due - now).total_seconds()
    window = (due - valid_at).total_seconds()
    if left < 0:
        level = "breached"
    elif left < policy.warn_fraction * window:
        level = "warning"
    else:
        level = "ok"
    return Deadline(due, left, level)


def sweep_deadlines(settings: Settings, policy: CasesPolicy, now: dt.datetime | None = None) -> dict[str, int]:
    """Announce each case once when it gets close to its deadline and once when it passes it: an automated
    audit event and a `case.deadline_warning` / `case.deadline_breached` webhook (for the platform's on-call).
    The webhook worker runs it just before a delivery round, so what it queues goes out in that round."""
    now = now or utcnow()
    counts = {"warning": 0, "breached": 0}
    with session_scope(settings) as s:
        open_cases = list(
            s.scalars(
                select(Case).where(
                    Case.state.in_([State.VALID.value, State.IN_REVIEW.value]),
                    Case.due_at.is_not(None),
                    Case.breached_at.is_(None),
                )
            )
        )
        for case in open_cases:
            d = deadline(case, policy, now)
            if d.level == "breached":
                col, event = "breached_at", "case.deadline_breached"
            elif d.level == "warning" and case.warned_at is None:
                col, event = "warned_at", "case.deadline_warning"
            else:
                continue
            claimed = s.execute(
                update(Case).where(Case.id == case.id, getattr(Case, col).is_(None)).values({col: now})
            ).rowcount  # type: ignore[attr-defined]
            if claimed != 1:
                continue  # another sweeper announced it
            counts[d.level] += 1
            audit.record(
                s,
                actor="deadline-sweep",
                actor_kind="automated",
                action=event.split(".", 1)[1],
                case_id=case.id,
                reason=d.label,
                details={"due_at": d.due_at.isoformat() if d.due_at else None},
            )
            webhooks.enqueue(
                s,
                event,
                {
                    "due_at": d.due_at.isoformat() if d.due_at else None,
                    "seconds_left": d.seconds_left,
                    "state": case.state,
                },
                case_id=case.id,
            )
    return counts
