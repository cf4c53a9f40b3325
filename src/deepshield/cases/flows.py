"""Orchestration with side effects: decisions (webhooks, statements, banking, copy search), appeals, media
evidence, victim hashes, withdrawal and upload screening. Services hold the data rules; flows call the
outside."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from deepshield.cases import audit, reasons, service, webhooks
from deepshield.cases.adapters import (
    FileHashes,
    MemoryHashBank,
    default_hash_bank,
    default_screeners,
    file_hashes,
    hamming_hex,
)
from deepshield.cases.models import (
    Appeal,
    Case,
    CaseAction,
    CaseEvidence,
    CaseMedia,
    StatementOfReasons,
    UploadScreening,
    VictimHash,
)
from deepshield.cases.policy import CasesPolicy, load_policy
from deepshield.cases.ports import Finding, HashBank, Screener, strongest
from deepshield.cases.statemachine import DECIDED, State
from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.store.db import session_scope
from deepshield.store.timeutil import utcnow

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


@dataclass
class CasesContext:
    """Everything a flow needs, built once per app (or per test) so the ports can be swapped."""

    settings: Settings
    policy: CasesPolicy
    bank: HashBank
    screeners: list[Screener] = field(default_factory=list)
    worker: webhooks.WebhookWorker | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        bank: HashBank | None = None,
        screeners: list[Screener] | None = None,
        start_worker: bool = True,
        detector: bool = True,
    ) -> CasesContext:
        policy = load_policy(settings)
        bank = bank or default_hash_bank(settings)
        ctx = cls(
            settings,
            policy,
            bank,
            screeners if screeners is not None else default_screeners(bank, policy.screening, detector, settings.home),
        )
        if isinstance(ctx.bank, MemoryHashBank):
            restore_bank(ctx)
        if start_worker and policy.webhook.url:
            ctx.worker = webhooks.WebhookWorker(settings, policy.webhook, periodic=lambda: sweep_deadlines(ctx))
            ctx.worker.start()
        return ctx

    def kick(self) -> None:
        if self.worker is not None:
            self.worker.kick()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        for s in self.screeners:
            close = getattr(s, "close", None)
            if close:
                close()


def case_hashes(session: Session, case_id: str) -> list[tuple[str, str]]:
    """(signal, value) of every media file and live victim hash of the case."""
    out: set[tuple[str, str]] = set()
    for m in session.scalars(select(CaseMedia).where(CaseMedia.case_id == case_id)):
        out.update(json.loads(m.hashes).items())
    for v in session.scalars(select(VictimHash).where(VictimHash.case_id == case_id, VictimHash.removed_at.is_(None))):
        out.add((v.signal, v.value))
    return sorted(out)


def restore_bank(ctx: CasesContext) -> int:
    """Re-add every live banked hash (bank actions not reversed, victim hashes not withdrawn) to the bank. The
    in-process fallback bank forgets on restart; this rebuilds it from the database, and adds are
    idempotent."""
    n = 0
    with session_scope(ctx.settings) as s:
        banked = set(
            s.scalars(select(CaseAction.case_id).where(CaseAction.kind == "bank", CaseAction.reversed_at.is_(None)))
        )
        for cid in banked:
            for sig, val in case_hashes(s, cid):
                ctx.bank.add(val, sig, cid, {"source": "case"})
                n += 1
        for v in s.scalars(select(VictimHash).where(VictimHash.removed_at.is_(None))):
            ctx.bank.add(v.value, v.signal, v.case_id, {"source": "victim"})
            n += 1
    return n


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
    with session_scope(ctx.settings) as s:
        case = service.get_case(s, case_id)
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
        hashes = case_hashes(s, case.id)
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
            extra={"decided_at": now, "decision": ",".join(kinds)},
            now=now,
        )
        sor = None
        if any(k in RESTRICTIONS or k == "bank" for k in kinds):
            sor = reasons.make_statement(
                s,
                case,
                kinds,
                facts=facts or f"Notice ({service.CATEGORIES.get(case.category, case.category)}) reviewed; {reason}",
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
        hashes = case_hashes(s, case_id)
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
                "pdq" in hs and any(hamming_hex(hs["pdq"], p) <= radius for p in pdqs)
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
        decided = service._ts(case.decided_at)
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
        hashes = case_hashes(s, case.id)
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


def _public(message: str, path: Path, filename: str) -> str:
    """A message about the stored file, naming the user's file instead of the server's path or temp name."""
    return message.replace(str(path), filename).replace(path.name, filename)


def _findings(ctx: CasesContext, path: Path, hashed: FileHashes, filename: str) -> list[Finding]:
    """Every screener's finding. Fails closed: a file that could not be hashed or checked, or a screener
    that failed, gives the policy's `on_error` decision (review, or block) with the reason, never `allow`."""
    on_error = ctx.policy.screening.on_error
    out = []
    if hashed.problem:
        out.append(Finding("hashing", on_error, _public(hashed.problem, path, filename), {"error": True}))
    for sc in ctx.screeners:
        try:
            f = sc.screen(path, hashed.hashes)
        except DeepshieldError as e:
            why = _public(e.message, path, filename)
            f = Finding(sc.name, on_error, f"{sc.name} could not check this file: {why}", {"error": True})
        except Exception:  # noqa: BLE001 - a crashed check is a failed check, never a pass
            log.exception("screener %s failed on %s", sc.name, path.name)
            f = Finding(
                sc.name, on_error, f"{sc.name} could not check this file (internal error, logged)", {"error": True}
            )
        if f is not None:
            out.append(f)
    return out


def attach_media(
    ctx: CasesContext,
    case_id: str,
    src: Path,
    filename: str,
    kind: str,
    actor: str,
    actor_kind: str,
    findings: list[Finding] | None = None,
) -> CaseMedia:
    """Store the reported media with the case and record what each screener finds as evidence."""
    with session_scope(ctx.settings) as s:
        service.get_case(s, case_id)
    dest = service.media_dir(ctx.settings, case_id) / f"{secrets.token_hex(8)}{src.suffix.lower()}"
    shutil.move(str(src), dest)
    hashed = file_hashes(dest)
    hashes = hashed.hashes
    if findings is None:
        findings = _findings(ctx, dest, hashed, filename)
    with session_scope(ctx.settings) as s:
        m = CaseMedia(
            case_id=case_id,
            filename=filename[:500],
            path=str(dest),
            kind=kind,
            sha256=hashes["sha256"],
            hashes=json.dumps(hashes),
        )
        s.add(m)
        s.flush()
        for f in findings:
            s.add(
                CaseEvidence(
                    case_id=case_id,
                    media_id=m.id,
                    kind=f.screener,
                    summary=f.reason,
                    data=json.dumps({"decision": f.decision, **f.data}, default=str),
                    automated=True,
                )
            )
        audit.record(
            s,
            actor=actor,
            actor_kind=actor_kind,
            action="media_attached",
            case_id=case_id,
            reason=f"{kind} {filename[:80]}; " + "; ".join(f"{f.screener}: {f.reason}" for f in findings),
            evidence=[hashes["sha256"]],
        )
        s.expunge(m)
    return m


@dataclass
class ScreeningResult:
    id: str
    decision: str
    reasons: list[dict[str, Any]]
    hashes: dict[str, str]
    case_id: str | None = None


def screen_upload(
    ctx: CasesContext,
    path: Path,
    filename: str,
    principal: str,
    content_ref: str = "",
    keep_media: bool = True,
    kind: str = "image",
) -> ScreeningResult:
    """Policy: a bank match blocks, a near match or a likely manipulated face queues for review, an AI label
    labels, a file that could not be fully checked gets `on_error` (review), anything else is allowed; every
    finding is stored as the reason."""
    hashed = file_hashes(path)
    hashes = hashed.hashes
    findings = _findings(ctx, path, hashed, filename)
    decision = strongest(findings)
    reasons_ = [{"screener": f.screener, "decision": f.decision, "reason": f.reason, "data": f.data} for f in findings]
    if not reasons_:
        reasons_ = [{"screener": "policy", "decision": "allow", "reason": "no screener found anything", "data": {}}]
    sid = secrets.token_hex(12)
    case_id = None
    with session_scope(ctx.settings) as s:
        s.add(
            UploadScreening(
                id=sid,
                principal=principal,
                filename=filename[:500],
                content_ref=content_ref[:500],
                sha256=hashes["sha256"],
                hashes=json.dumps(hashes),
                decision=decision,
                reasons=json.dumps(reasons_, default=str),
            )
        )
        if decision in ("block", "review"):
            why = "; ".join(str(r["reason"]) for r in reasons_ if r["decision"] == decision)
            audit.record(
                s,
                actor="screening",
                actor_kind="automated",
                action=f"upload:{decision}",
                reason=why,
                evidence=[hashes["sha256"]],
                details={"upload": sid, "by": principal},
            )
        if decision == "review":
            case_id = _screening_case(ctx, s, sid, content_ref, principal, why)
    if case_id is not None and keep_media:
        attach_media(ctx, case_id, path, filename, kind, "screening", "automated", findings=findings)
    return ScreeningResult(sid, decision, reasons_, hashes, case_id)


def _screening_case(ctx: CasesContext, s: Session, upload_id: str, content_ref: str, principal: str, why: str) -> str:
    """A review decision opens a case (no notice: the clock runs from now under the `other` category rule)."""
    now = utcnow()
    cid = service.new_case_id()
    due = ctx.policy.due(now, "other", "")
    s.add(
        Case(
            id=cid,
            version=1,
            state=State.RECEIVED.value,
            source="screening",
            submitted_by=principal,
            category="other",
            jurisdiction="",
            content_locations=json.dumps([content_ref or f"upload:{upload_id}"]),
            explanation=why,
            good_faith=True,
            signature="",
            reporter_name="",
            reporter_email="",
            reporter_contact="",
            reporter_role="",
            missing="[]",
            pin_hash="!",
            pin_failures=0,
            received_at=now,
        )
    )
    s.flush()
    case = service.get_case(s, cid)
    service.transition(
        s,
        case,
        State.VALID,
        actor="screening",
        actor_kind="automated",
        reason=f"queued for review by upload screening: {why}",
        extra={"valid_at": now, "due_at": due},
        now=now,
    )
    return cid


def sweep_deadlines(ctx: CasesContext, now: dt.datetime | None = None) -> dict[str, int]:
    """Announce each case once when it gets close to its deadline and once when it passes it: an automated
    audit event and a `case.deadline_warning` / `case.deadline_breached` webhook (for the platform's on-call)."""
    now = now or utcnow()
    counts = {"warning": 0, "breached": 0}
    with session_scope(ctx.settings) as s:
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
            d = service.deadline(case, ctx.policy, now)
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
    if any(counts.values()):
        ctx.kick()
    return counts
