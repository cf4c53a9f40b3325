"""Case API for platform integrations (scope `cases`; appeal decisions need a signed-in person), upload
screening
(scope `scan`), the Transparency Database export and admin tools (scope `admin`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from deepshield.accounts.service import Principal
from deepshield.api.deps import CasesDep, SessionDep, SettingsDep, client_key, require_scope
from deepshield.api.uploads import save_upload
from deepshield.cases import audit, claims, deadlines, flows, pins, reasons, screening, service, webhooks
from deepshield.cases.context import CasesContext
from deepshield.cases.models import Appeal, CaseAction, CaseEvidence, CaseMedia
from deepshield.cases.ratelimit import PIN
from deepshield.store.bounds import DB_INT_MAX, HAS_TEXT
from deepshield.store.db import session_scope
from deepshield.store.timeutil import as_utc

router = APIRouter(tags=["cases"])
CasesPrincipal = Annotated[Principal, Depends(require_scope("cases"))]
ScanPrincipal = Annotated[Principal, Depends(require_scope("scan"))]
AdminPrincipal = Annotated[Principal, Depends(require_scope("admin"))]


def actor_kind(p: Principal) -> str:
    return "human" if p.kind == "user" else "automated"


def case_dict(s: Any, ctx: CasesContext, case: Any, personal: bool = True) -> dict[str, Any]:
    d = deadlines.deadline(case, ctx.policy)
    out: dict[str, Any] = {
        "case_id": case.id,
        "state": case.state,
        "version": case.version,
        "category": case.category,
        "jurisdiction": case.jurisdiction,
        "source": case.source,
        "missing": json.loads(case.missing),
        "received_at": as_utc(case.received_at).isoformat(),
        "due_at": d.due_at.isoformat() if d.due_at else None,
        "seconds_left": d.seconds_left,
        "deadline": d.level,
        "decision": case.decision,
        "state_times": {k: v.isoformat() for k, v in service.state_times(s, case.id).items()},
        "statements": [sor.id for sor in reasons.statements_for(s, case.id)],
    }
    if personal:
        out.update(
            {
                "content_locations": json.loads(case.content_locations),
                "explanation": case.explanation,
                "reporter_name": case.reporter_name,
                "reporter_email": case.reporter_email,
                "reporter_role": case.reporter_role,
                "assignee": case.assignee,
            }
        )
    return out


@router.get("/v1/cases")
def list_cases(
    session: SessionDep,
    ctx: CasesDep,
    principal: CasesPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Open cases, least time left first; `deadline` is ok / warning / breached."""
    return {"cases": [case_dict(session, ctx, c, personal=False) for c, _ in service.queue(session, ctx.policy, limit)]}


@router.get("/v1/cases/{case_id}")
def get_case(case_id: str, session: SessionDep, ctx: CasesDep, principal: CasesPrincipal) -> dict[str, Any]:
    case = service.get_case(session, case_id)
    out = case_dict(session, ctx, case)
    out["media"] = [
        {"id": m.id, "sha256": m.sha256, "kind": m.kind, "hashes": json.loads(m.hashes)}
        for m in session.query(CaseMedia).filter_by(case_id=case.id)
    ]
    out["evidence"] = [
        {"kind": e.kind, "summary": e.summary, "data": json.loads(e.data)}
        for e in session.query(CaseEvidence).filter_by(case_id=case.id)
    ]
    out["actions"] = [
        {
            "kind": a.kind,
            "actor": a.actor,
            "actor_kind": a.actor_kind,
            "reason": a.reason,
            "at": a.at.isoformat(),
            "reversed": a.reversed_at is not None,
        }
        for a in session.query(CaseAction).filter_by(case_id=case.id)
    ]
    out["appeals"] = [
        {"filed_at": a.filed_at.isoformat(), "reason": a.reason, "outcome": a.outcome}
        for a in session.query(Appeal).filter_by(case_id=case.id)
    ]
    return out


def _claim_dict(case: Any) -> dict[str, Any]:
    return {
        "case_id": case.id,
        "assignee": case.assignee,
        "claimed_at": as_utc(case.claimed_at).isoformat() if case.claimed_at else None,
    }


@router.post("/v1/cases/{case_id}/claim")
def claim_case(case_id: str, ctx: CasesDep, principal: CasesPrincipal) -> dict[str, Any]:
    """Claim the case for the caller; a case someone else holds is a 409 naming them."""
    with session_scope(ctx.settings) as s:
        return _claim_dict(claims.claim(s, case_id, principal.name))


@router.post("/v1/cases/{case_id}/release")
def release_case(case_id: str, ctx: CasesDep, principal: CasesPrincipal) -> dict[str, Any]:
    """Give the case back to the queue (its holder, or an admin for anyone)."""
    with session_scope(ctx.settings) as s:
        return _claim_dict(claims.release(s, case_id, principal.name, lead=principal.has_scope("admin")))


class AssignIn(BaseModel):
    assignee: str = Field(min_length=1, max_length=128)


@router.post("/v1/cases/{case_id}/assign")
def assign_case(case_id: str, body: AssignIn, ctx: CasesDep, principal: AdminPrincipal) -> dict[str, Any]:
    """A lead gives the case to a reviewer (scope `admin`)."""
    with session_scope(ctx.settings) as s:
        return _claim_dict(claims.assign(s, case_id, body.assignee, lead=principal.name))


class InfoIn(BaseModel):
    category: str | None = None
    jurisdiction: str | None = None
    content_locations: list[str] | None = None
    explanation: str | None = None
    good_faith: StrictBool | None = None  # 0 or "yes" is not a statement made in good faith
    signature: str | None = None
    reporter_name: str | None = None
    reporter_email: str | None = None
    reporter_contact: str | None = None
    reporter_role: str | None = None


@router.post("/v1/cases/{case_id}/info")
def supply_info(case_id: str, body: InfoIn, ctx: CasesDep, principal: CasesPrincipal) -> dict[str, Any]:
    """Add what a `needs_info` notice lacked; the validity check runs again."""
    with session_scope(ctx.settings) as s:
        case = service.supply_info(
            s, case_id, body.model_dump(exclude_none=True), principal.name, actor_kind(principal), ctx.policy
        )
        return case_dict(s, ctx, case)


@router.post("/v1/cases/{case_id}/media", status_code=201)
async def attach_media(
    case_id: str,
    request: Request,
    settings: SettingsDep,
    ctx: CasesDep,
    principal: CasesPrincipal,
    file: Annotated[UploadFile, File(description="the reported image or video")],
) -> dict[str, Any]:
    """Attach the reported media; match, label and detector evidence are recorded with it."""
    with session_scope(settings) as s:
        service.get_case(s, case_id)
    path, media = await save_upload(file, settings)
    m = await run_in_threadpool(
        screening.attach_media,
        ctx,
        case_id,
        path,
        file.filename or path.name,
        media.info.kind.value,
        principal.name,
        actor_kind(principal),
    )
    return {"media_id": m.id, "sha256": m.sha256, "hashes": json.loads(m.hashes)}


#: The actions `flows.decide` takes, as the schema can say them: [no_action] alone, or a set of the others
#: without both remove and restrict (the server checks the same; this tells clients and the fuzzer).
ACTIONS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "array", "items": {"const": "no_action"}, "minItems": 1},
        {
            "type": "array",
            "items": {"enum": [k for k in flows.ACTION_KINDS if k != "no_action"]},
            "minItems": 1,
            "not": {"allOf": [{"contains": {"const": k}} for k in flows.RESTRICTIONS]},
        },
    ]
}


#: A decision's or appeal's reason: required, bounded, and not blank by the service's own test (`HAS_TEXT`).
Reason = Annotated[str, Field(min_length=1, max_length=4000, pattern=HAS_TEXT)]


class DecisionIn(BaseModel):
    actions: list[str] = Field(
        description="one or more of remove, restrict, bank; or [no_action]", json_schema_extra=ACTIONS_SCHEMA
    )
    reason: Reason
    expected_version: int | None = Field(
        default=None, ge=0, le=DB_INT_MAX, description="the case version you looked at (409 if stale)"
    )
    facts: str = Field(default="", max_length=4000)
    territorial_scope: str = Field(default="", max_length=200)
    duration: str = Field(default="indefinite", max_length=60)


@router.post("/v1/cases/{case_id}/review")
def start_review(
    case_id: str,
    ctx: CasesDep,
    principal: CasesPrincipal,
    expected_version: Annotated[int | None, Query(ge=0, le=DB_INT_MAX)] = None,
) -> dict[str, Any]:
    case = flows.start_review(ctx, case_id, principal.name, expected_version)
    return {"case_id": case.id, "state": case.state, "version": case.version}


@router.post("/v1/cases/{case_id}/decision")
def decide(case_id: str, body: DecisionIn, ctx: CasesDep, principal: CasesPrincipal) -> dict[str, Any]:
    """Act on the case. Each action calls the platform's webhook; restrictions get a statement of reasons;
    `bank` adds the hashes to the bank and searches earlier uploads for copies. Concurrent decisions: one
    wins,
    the others get 409."""
    r = flows.decide(
        ctx,
        case_id,
        body.actions,
        actor=principal.name,
        actor_kind=actor_kind(principal),
        reason=body.reason,
        expected_version=body.expected_version,
        facts=body.facts,
        territorial_scope=body.territorial_scope,
        duration=body.duration,
    )
    return {
        "case_id": r.case.id,
        "state": r.case.state,
        "version": r.case.version,
        "actions": r.actions,
        "statement_id": r.statement_id,
        "banked": r.banked,
        "copies_found": r.copies_found,
    }


class AppealIn(BaseModel):
    reason: Reason
    filed_by: str = Field(default="uploader", max_length=128)


@router.post("/v1/cases/{case_id}/appeals", status_code=201)
def file_appeal(case_id: str, body: AppealIn, ctx: CasesDep, principal: CasesPrincipal) -> dict[str, Any]:
    """An Art. 20 complaint relayed by the platform (e.g. from the uploader), within 6 months of the
    decision."""
    ap = flows.file_appeal(
        ctx,
        case_id,
        filed_by=f"{principal.name}:{body.filed_by}",
        actor_kind=actor_kind(principal),
        reason=body.reason,
    )
    return {"case_id": case_id, "appeal_id": ap.id, "state": "appealed"}


class AppealDecisionIn(BaseModel):
    outcome: str = Field(pattern="^(upheld|reversed)$")
    reason: Reason
    expected_version: int | None = Field(default=None, ge=0, le=DB_INT_MAX)


@router.post("/v1/cases/{case_id}/appeal-decision")
def decide_appeal(
    case_id: str,
    body: AppealDecisionIn,
    ctx: CasesDep,
    principal: Annotated[Principal, Depends(require_scope("review"))],
) -> dict[str, Any]:
    """Only a signed-in person decides an appeal (an API key is refused with 403)."""
    case = flows.decide_appeal(
        ctx,
        case_id,
        body.outcome,
        actor=principal.name,
        actor_kind=actor_kind(principal),
        reason=body.reason,
        expected_version=body.expected_version,
    )
    return {"case_id": case.id, "state": case.state, "version": case.version}


@router.get("/v1/statements/{statement_id}")
def get_statement(statement_id: str, session: SessionDep, principal: CasesPrincipal) -> dict[str, Any]:
    from deepshield.cases.models import StatementOfReasons

    sor = session.get(StatementOfReasons, statement_id)
    if sor is None:
        raise service.CaseNotFound("no such statement")
    return reasons.statement_dict(sor)


@router.get("/v1/transparency/statements")
def transparency_export(session: SessionDep, principal: CasesPrincipal) -> dict[str, Any]:
    """Statements of reasons in Transparency Database form, without personal data."""
    return {"statements": reasons.export_transparency(session)}


@router.post("/v1/uploads")
async def screen_upload(
    request: Request,
    settings: SettingsDep,
    ctx: CasesDep,
    principal: ScanPrincipal,
    file: Annotated[UploadFile, File(description="the uploaded image or video")],
    content_ref: Annotated[str, Form(max_length=500)] = "",
) -> dict[str, Any]:
    """Screen an upload before it goes live: bank match (block), near match or likely manipulated face
    (review),
    AI label (label), else allow; every reason is stored."""
    path, media = await save_upload(file, settings)
    try:
        r = await run_in_threadpool(
            screening.screen_upload,
            ctx,
            path,
            file.filename or path.name,
            principal.name,
            content_ref,
            True,
            media.info.kind.value,
        )
    finally:
        path.unlink(missing_ok=True)  # kept only when a review case took it
    return {
        "upload_id": r.id,
        "decision": r.decision,
        "reasons": r.reasons,
        "hashes": r.hashes,
        "review_case": r.case_id,
    }


@router.get("/v1/webhooks/dead-letters")
def dead_letters(session: SessionDep, principal: AdminPrincipal) -> dict[str, Any]:
    return {
        "dead": [
            {
                "id": d.id,
                "idempotency_key": d.idempotency_key,
                "event": d.event,
                "case_id": d.case_id,
                "attempts": d.attempts,
                "last_error": d.last_error,
            }
            for d in webhooks.dead_letters(session)
        ]
    }


@router.post("/v1/webhooks/dead-letters/requeue")
def requeue(
    session: SessionDep,
    ctx: CasesDep,
    principal: AdminPrincipal,
    delivery_id: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
) -> dict[str, Any]:
    n = webhooks.requeue(session, delivery_id)
    session.commit()
    ctx.kick()
    return {"requeued": n}


@router.get("/v1/audit/verify")
def audit_verify(session: SessionDep, principal: AdminPrincipal) -> dict[str, Any]:
    r = audit.verify(session)
    return {"ok": r.ok, "events": r.events, "head_hash": r.head_hash, "problems": r.problems}


# Victim self-service API (case number + PIN instead of a key; rate limited and locked out on wrong PINs).
class SelfAuth(BaseModel):
    case_id: str = Field(max_length=20)
    pin: str = Field(max_length=16)


class HashItem(BaseModel):
    signal: str = Field(max_length=16)
    value: str = Field(max_length=128)


class SelfHashes(SelfAuth):
    hashes: list[HashItem] = Field(max_length=1000)


#: The PIN routes are rate limited per client and lock a case after wrong PINs.
THROTTLED: dict[int | str, dict[str, Any]] = {429: {"description": "too many attempts: wait and retry"}}


def _self_case(request: Request, ctx: CasesContext, auth: SelfAuth) -> str:
    """The case, or the same 404 for an unknown case number and a wrong PIN (429 once this client is locked
    out of this case number, or at its limit across cases)."""
    client = client_key(request)
    PIN.hit(client)
    with session_scope(ctx.settings) as s:
        case = pins.check_pin(s, ctx.settings, auth.case_id, auth.pin, client)
        if case is None:
            s.commit()
            raise service.CaseNotFound(pins.WRONG_PIN)
        return case.id


@router.post("/v1/selfservice/status", responses=THROTTLED)
def self_status(body: SelfAuth, request: Request, ctx: CasesDep) -> dict[str, Any]:
    cid = _self_case(request, ctx, body)
    with session_scope(ctx.settings) as s:
        return case_dict(s, ctx, service.get_case(s, cid), personal=False)


@router.post("/v1/selfservice/hashes", status_code=201, responses=THROTTLED)
def self_hashes(body: SelfHashes, request: Request, ctx: CasesDep) -> dict[str, Any]:
    """Hashes computed on the victim's device (never the media) are banked against the case."""
    cid = _self_case(request, ctx, body)
    n = flows.add_victim_hashes(ctx, cid, [(h.signal, h.value) for h in body.hashes], actor="victim")
    return {"case_id": cid, "added": n}


@router.post("/v1/selfservice/withdraw", responses=THROTTLED)
def self_withdraw(body: SelfAuth, request: Request, ctx: CasesDep) -> dict[str, Any]:
    """Withdraw: the case closes and every hash of it is removed from every bank."""
    cid = _self_case(request, ctx, body)
    n = flows.withdraw(ctx, cid, actor="victim")
    return {"case_id": cid, "state": "closed", "hashes_removed": n}
