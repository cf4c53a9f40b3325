"""Orchestration with side effects: decisions (webhooks, statements, banking, copy search), appeals, victim
hashes and withdrawal. Services hold the data rules; flows call the outside. Screening and evidence are in
`screening`, the deadline sweep in `deadlines`."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from deepshield.cases import audit, claims, reasons, service, validity, webhooks
from deepshield.cases.context import CasesContext
from deepshield.cases.models import (
    Appeal,
    Case,
    CaseAction,
    CaseEvidence,
    StatementOfReasons,
    UploadScreening,
    VictimHash,
)
from deepshield.cases.statemachine import DECIDED, State
from deepshield.errors import DeepshieldError
from deepshield.matching.bits import hamming
from deepshield.store.db import session_scope
from deepshield.store.timeutil import as_utc, utcnow

log = logging.getLogger("deepshield.cases")
RESTRICTIONS = ("remove", "restrict")
ACTION_KINDS = ("remove", "restrict", "bank", "no_action")


class BadAction(DeepshieldError):
    code = "invalid_action"
    http_status = 422


class AppealClosed(DeepshieldError):
    code = "appeal_window_closed"
    http_status = 409


class HumanRequired(DeepshieldError):
    code = "human_required"
    http_status = 403


def _automated_detection(session: Session, case_id: str) -> bool:
    rows = session.scalars(select(CaseEvidence).where(CaseEvidence.case_id == case_id, CaseEvidence.automated))
    return any(json.loads(r.data).get("decision") in ("block", "review", "label") for r in rows)


@dataclass
class DecisionResult:
    case: Case
    actions: list[str]
    statement_id: str | None
    banked: int = 0
    copies_found: int = 0


def start_review(ctx: CasesContext, case_id: str, actor: str, expected_version: int | None = None) -> Case:
    """Start reviewing (claiming the case for the reviewer; someone else's claim is a 409)."""
    with session_scope(ctx.settings) as s:
        case = service.get_case(s, case_id)
        claims.check_not_held_by_other(case, actor)
        if case.assignee is None:
            claims.claim(s, case.id, actor)
        return service.transition(
            s,
            case,
            State.IN_REVIEW,
            actor=actor,
            actor_kind="human",
            reason="review started",
            expected_version=expected_version,
            extra={"assignee": actor},
        )


def decide(
    ctx: CasesContext,
    case_id: str,
    kinds: list[str],
    *,
    actor: str,
    actor_kind: str,
    reason: str,
    expected_version: int | None = None,
    facts: str = "",
    territorial_scope: str = "",
    duration: str = "indefinite",
) -> DecisionResult:
    """Act on a valid or in-review case. Exactly one concurrent decision wins; the others get 409."""
    kinds = sorted(set(kinds), key=ACTION_KINDS.index) if all(k in ACTION_KINDS for k in kinds) else kinds
    bad = [k for k in kinds if k not in ACTION_KINDS]
    if bad or not kinds:
        raise BadAction(f"unknown or missing action(s) {bad or '(none)'}; choose from {', '.join(ACTION_KINDS)}")
    if "no_action" in kinds and len(kinds) > 1:
        raise BadAction("no_action cannot be combined with other actions")
    if "remove" in kinds and "restrict" in kinds:
        raise BadAction("choose remove or restrict, not both")
    if not reason.strip():
        raise BadAction("a reason is required for every decision")
    target = State.NO_ACTION if kinds == ["no_action"] else State.ACTIONED
    with session_scope(ctx.settings) as s:
        case = service.get_case(s, case_id)
        if actor_kind == "human":  # a person decides only what nobody else holds
            claims.check_not_held_by_other(case, actor)
        hashes = service.case_hashes(s, case.id)
        evidence = [v for sig, v in hashes if sig == "sha256"]
        now = utcnow()
        service.transition(
            s,
            case,
            target,
            actor=actor,
            actor_kind=actor_kind,
            reason=reason,
            expected_version=expected_version,
            evidence=evidence,
            # the decision ends the claim: an appeal is open to any reviewer
            extra={"decided_at": now, "decision": ",".join(kinds), "assignee": None, "claimed_at": None},
            now=now,
        )
        sor = None
        if any(k in RESTRICTIONS or k == "bank" for k in kinds):
            sor = reasons.make_statement(
                s,
                case,
                kinds,
                facts=facts or f"Notice ({validity.CATEGORIES.get(case.category, case.category)}) reviewed; {reason}",
                automated_detection=_automated_detection(s, case.id),
                automated_decision=actor_kind == "automated",
                territorial_scope=territorial_scope,
                duration=duration,
            )
        locations = json.loads(case.content_locations)
        for k in kinds:
            s.add(CaseAction(case_id=case.id, kind=k, actor=actor, actor_kind=actor_kind, reason=reason, at=now))
            audit.record(
                s,
                actor=actor,
                actor_kind=actor_kind,
                action=f"action:{k}",
                case_id=case.id,
                reason=reason,
                evidence=evidence,
                details={"statement": sor.id if sor else None},
            )
            webhooks.enqueue(
                s,
                f"action.{k}",
                {
                    "action": k,
                    "content_locations": locations,
                    "hashes": [{"signal": a, "value": b} for a, b in hashes],
                    "statement_id": sor.id if sor else None,
                    # the Art. 17 statement, for the platform to send to the uploader
                    "statement": reasons.statement_dict(sor) if sor else None,
                    "reason": reason,
                },
                case_id=case.id,
            )
        case_id = case.id
    result = DecisionResult(case=case, actions=kinds, statement_id=sor.id if sor else None)
    if "bank" in kinds:
        result.banked, result.copies_found = bank_case(ctx, case_id, actor)
    ctx.kick()
    return result


def bank_case(ctx: CasesContext, case_id: str, actor: str) -> tuple[int, int]:
    """Add the case's hashes to the bank, then search already-screened uploads for copies."""
    with session_scope(ctx.settings) as s:
        hashes = service.case_hashes(s, case_id)
    for sig, val in hashes:
        ctx.bank.add(val, sig, case_id, {"source": "case", "actor": actor})
    copies = search_copies(ctx, case_id, hashes)
    with session_scope(ctx.settings) as s:
        audit.record(
            s,
            actor="banking",
            actor_kind="automated",
            action="banked",
            case_id=case_id,
            reason=f"{len(hashes)} hash(es) banked; {copies} earlier upload(s) found as copies",
            evidence=[v for _, v in hashes],
        )
    return len(hashes), copies


def search_copies(ctx: CasesContext, case_id: str, hashes: list[tuple[str, str]]) -> int:
    """Find uploads screened before the hash was banked; each copy found gets a removal webhook."""
    exact = {(sig, v) for sig, v in hashes if sig != "pdq"}
    pdqs = [v for sig, v in hashes if sig == "pdq"]
    radius = ctx.policy.screening.pdq_block_distance
    found = 0
    with session_scope(ctx.settings) as s:
        for up in s.scalars(
            select(UploadScreening).where(UploadScreening.copy_of_case.is_(None), UploadScreening.decision != "block")
        ):
            hs = json.loads(up.hashes)
            hit = any((sig, v) in exact for sig, v in hs.items()) or (
                "pdq" in hs and any(hamming(hs["pdq"], p) <= radius for p in pdqs)
            )
            if not hit:
                continue
            up.copy_of_case = case_id
            found += 1
            webhooks.enqueue(
                s,
                "copy.remove",
                {
                    "action": "remove",
                    "upload_id": up.id,
                    "content_ref": up.content_ref,
                    "reason": f"copy of media banked in case {case_id}",
                },
                case_id=case_id,
            )
            audit.record(
                s,
                actor="copy-search",
                actor_kind="automated",
                action="copy_found",
                case_id=case_id,
                reason=f"upload {up.id} matches banked media",
                evidence=[up.sha256],
            )
    return found


def _undo(ctx: CasesContext, s: Session, case: Case, actor: str, reason: str) -> bool:
    """Reverse every restriction of the case: restore webhooks, statements revoked. Returns True if banked."""
    now = utcnow()
    banked = False
    for a in s.scalars(select(CaseAction).where(CaseAction.case_id == case.id, CaseAction.reversed_at.is_(None))):
        if a.kind == "no_action":
            continue
        a.reversed_at = now
        banked = banked or a.kind == "bank"
        webhooks.enqueue(
            s,
            f"reverse.{a.kind}",
            {
                "action": f"undo_{a.kind}",
                "content_locations": json.loads(case.content_locations),
                "reason": reason,
            },
            case_id=case.id,
        )
        audit.record(s, actor=actor, actor_kind="human", action=f"reversed:{a.kind}", case_id=case.id, reason=reason)
    s.execute(
        update(StatementOfReasons)
        .where(StatementOfReasons.case_id == case.id, StatementOfReasons.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return banked


def file_appeal(
    ctx: CasesContext,
    case_id: str,
    *,
    filed_by: str,
    actor_kind: str,
    reason: str,
    now: dt.datetime | None = None,
) -> Appeal:
    """Art. 20 complaint: open for `appeal_window_days` (default 183, i.e. at least 6 months) after the
    decision."""
    now = now or utcnow()
    if not reason.strip():
        raise BadAction("say why the decision is wrong")
    with session_scope(ctx.settings) as s:
        case = service.get_case(s, case_id)
        if case.state not in DECIDED:
            raise AppealClosed(f"case {case.id} is {case.state}: only a decided case can be appealed")
        decided = as_utc(case.decided_at)
        assert decided is not None
        if now > decided + dt.timedelta(days=ctx.policy.appeal_window_days):
            raise AppealClosed(f"the appeal window closed {ctx.policy.appeal_window_days} days after the decision")
        service.transition(s, case, State.APPEALED, actor=filed_by, actor_kind=actor_kind, reason=reason, now=now)
        ap = Appeal(case_id=case.id, filed_by=filed_by, reason=reason, filed_at=now, decision_reason="")
        s.add(ap)
        s.flush()
        return ap


def decide_appeal(
    ctx: CasesContext,
    case_id: str,
    outcome: str,
    *,
    actor: str,
    actor_kind: str,
    reason: str,
    expected_version: int | None = None,
) -> Case:
    """Only a person decides an appeal. `reversed` undoes the action and the banking."""
    if actor_kind != "human":
        raise HumanRequired("appeals are decided by a person (sign in to the review console)")
    if outcome not in ("upheld", "reversed"):
        raise BadAction("outcome must be upheld or reversed")
    if not reason.strip():
        raise BadAction("a reason is required")
    unbank = False
    with session_scope(ctx.settings) as s:
        case = service.get_case(s, case_id)
        service.transition(
            s,
            case,
            State(outcome),
            actor=actor,
            actor_kind="human",
            reason=reason,
            expected_version=expected_version,
            extra={"assignee": None, "claimed_at": None},
        )
        ap = s.scalar(
            select(Appeal).where(Appeal.case_id == case.id, Appeal.decided_at.is_(None)).order_by(Appeal.id.desc())
        )
        if ap is not None:
            ap.decided_at, ap.decided_by, ap.outcome, ap.decision_reason = utcnow(), actor, outcome, reason
        if outcome == "reversed":
            unbank = _undo(ctx, s, case, actor, reason)
    if unbank:
        _remove_case_hashes(ctx, case_id, "unbanked", "appeal reversed")
    ctx.kick()
    return case


_HEX = re.compile(r"^[0-9a-f]+$")
SIGNAL_LEN = {"pdq": 64, "md5": 32, "sha256": 64}


def add_victim_hashes(ctx: CasesContext, case_id: str, items: list[tuple[str, str]], actor: str) -> int:
    """Hashes computed on the victim's device go straight into the bank (StopNCII model), tied to the case."""
    clean: list[tuple[str, str]] = []
    for sig, val in items:
        sig, val = sig.strip().lower(), val.strip().lower()
        if sig not in SIGNAL_LEN:
            raise BadAction(f"unknown hash type {sig!r}; use one of {', '.join(SIGNAL_LEN)}")
        if len(val) != SIGNAL_LEN[sig] or not _HEX.match(val):
            raise BadAction(f"a {sig} hash is {SIGNAL_LEN[sig]} hexadecimal characters")
        clean.append((sig, val))
    if not clean:
        raise BadAction("no hashes given")
    added = 0
    with session_scope(ctx.settings) as s:
        case = service.get_case(s, case_id)
        if case.state == State.CLOSED.value:
            raise BadAction(f"case {case.id} is closed")
        have = {(v.signal, v.value) for v in s.scalars(select(VictimHash).where(VictimHash.case_id == case.id))}
        for sig, val in clean:
            if (sig, val) in have:
                continue
            s.add(VictimHash(case_id=case.id, signal=sig, value=val))
            have.add((sig, val))
            added += 1
        audit.record(
            s,
            actor=actor,
            actor_kind="human",
            action="hashes_added",
            case_id=case.id,
            reason=f"{added} hash(es) computed on the victim's device",
            evidence=[v for _, v in clean],
        )
    for sig, val in clean:
        ctx.bank.add(val, sig, case.id, {"source": "victim"})
    return added


def withdraw(ctx: CasesContext, case_id: str, actor: str, reason: str = "withdrawn by the reporter") -> int:
    """Close the case and delete every hash of it everywhere (banks, and the platform via a webhook)."""
    with session_scope(ctx.settings) as s:
        case = service.get_case(s, case_id)
        hashes = service.case_hashes(s, case.id)
        now = utcnow()
        s.execute(
            update(VictimHash)
            .where(VictimHash.case_id == case.id, VictimHash.removed_at.is_(None))
            .values(removed_at=now)
        )
        if case.state != State.CLOSED.value:
            service.transition(
                s,
                case,
                State.CLOSED,
                actor=actor,
                actor_kind="human",
                reason=reason,
                extra={"withdrawn_at": now},
                now=now,
            )
        webhooks.enqueue(
            s,
            "hashes.withdrawn",
            {"action": "delete_hashes", "hashes": [{"signal": a, "value": b} for a, b in hashes]},
            case_id=case.id,
        )
    n = _remove_case_hashes(ctx, case_id, "hashes_removed", "withdrawal")
    ctx.kick()
    return n


def _remove_case_hashes(ctx: CasesContext, case_id: str, action: str, why: str) -> int:
    """Remove every hash of the case from every bank, and say so in the audit trail as an automated step."""
    n = ctx.bank.remove_case(case_id)
    with session_scope(ctx.settings) as s:
        audit.record(
            s,
            actor="banking",
            actor_kind="automated",
            action=action,
            case_id=case_id,
            reason=f"{why}: {n} hash(es) removed from every bank",
        )
    return n
