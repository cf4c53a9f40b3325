"""The victim's self-service pages: sign in with the case number and PIN, follow the case, add what the notice
lacked, add fingerprints, appeal, withdraw, sign out (a shared device must not stay signed in to a case).

Every change goes through the cases flows, which write the audit trail; signing out is audited here."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from deepshield.api.consoleui import page
from deepshield.api.deps import CasesDep, OptionalUser, SessionDep, check_csrf, client_key
from deepshield.api.routes.console import _form_post
from deepshield.cases import audit, deadlines, flows, pins, reasons, service, validity
from deepshield.cases.context import CasesContext
from deepshield.cases.ratelimit import PIN
from deepshield.errors import DeepshieldError
from deepshield.store.db import session_scope

router = APIRouter(include_in_schema=False)


def _victim_case(request: Request, case_id: str) -> str:
    if request.session.get("victim_case") != case_id.upper():
        raise HTTPException(303, headers={"Location": "/case-status"})
    return case_id.upper()


@router.get("/case-status", response_class=HTMLResponse)
def status_login(request: Request, user: OptionalUser) -> Response:
    signed_out = request.query_params.get("signed_out") is not None
    return page(request, "cases/status_login.html", user, signed_out=signed_out)


@router.post("/case-status", response_class=HTMLResponse)
def status_login_post(
    request: Request,
    user: OptionalUser,
    ctx: CasesDep,
    csrf: Annotated[str, Form()] = "",
    case_id: Annotated[str, Form(max_length=20)] = "",
    pin: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    check_csrf(request, csrf)
    client = client_key(request)
    try:
        PIN.hit(client)
        with session_scope(ctx.settings) as s:
            case = pins.check_pin(s, ctx.settings, case_id, pin, client)
            cid = case.id if case else None
    except DeepshieldError as e:
        return page(request, "cases/status_login.html", user, error=e.message, status=e.http_status)
    if cid is None:  # the same answer whether the case number is unknown or the PIN wrong
        return page(request, "cases/status_login.html", user, error="Unknown case number or wrong PIN.", status=401)
    request.session["victim_case"] = cid
    return RedirectResponse(f"/case-status/{cid}", status_code=303)


@router.get("/case-status/{case_id}", response_class=HTMLResponse)
def status_page(case_id: str, request: Request, user: OptionalUser, session: SessionDep, ctx: CasesDep) -> Response:
    cid = _victim_case(request, case_id)
    case = service.get_case(session, cid)
    return page(
        request,
        "cases/status.html",
        user,
        case=case,
        deadline=deadlines.deadline(case, ctx.policy),
        timeline=service.timeline(session, cid),
        missing=json.loads(case.missing),
        statements=reasons.statements_for(session, cid),
        banked=service.banked_hash_count(session, case),
        message=request.query_params.get("msg"),
        error=request.query_params.get("error"),
        can_appeal=case.state in ("actioned", "no_action"),
        categories=validity.CATEGORIES,
        roles=validity.ROLES,
    )


@router.post("/case-status/sign-out")
def status_sign_out(request: Request, session: SessionDep, csrf: Annotated[str, Form()] = "") -> Response:
    """Forget the case in this browser (a shared device must not stay signed in); audited like the sign-in."""
    check_csrf(request, csrf)
    cid = request.session.pop("victim_case", None)
    if isinstance(cid, str):
        audit.record(session, actor="victim", actor_kind="human", action="status_signed_out", case_id=cid)
        session.commit()
    return RedirectResponse("/case-status?signed_out=1", status_code=303)


def _status_back(cid: str, msg: str = "", error: str = "") -> RedirectResponse:
    from urllib.parse import urlencode

    q = urlencode({k: v for k, v in (("msg", msg), ("error", error)) if v})
    return RedirectResponse(f"/case-status/{cid}" + (f"?{q}" if q else ""), status_code=303)


def _to_status(cid: str) -> Callable[[str, str], Response]:
    """Back to the reporter's status page, with the message or the error."""
    return lambda msg, error: _status_back(cid, msg=msg, error=error)


@dataclass(frozen=True)
class _StatusForm:
    """What the reporter's forms on the status page post besides their own fields."""

    case_id: str
    request: Request
    ctx: CasesContext
    csrf: str

    def run(self, step: Callable[[str], str]) -> Response:
        """The reporter's own case (signed in with its PIN), the CSRF token checked, the step run on the case,
        then back to the status page with the step's message or its error."""
        cid = _victim_case(self.request, self.case_id)
        return _form_post(self.request, self.csrf, lambda: step(cid), _to_status(cid))


def _status_form(case_id: str, request: Request, ctx: CasesDep, csrf: Annotated[str, Form()] = "") -> _StatusForm:
    return _StatusForm(case_id, request, ctx, csrf)


StatusForm = Annotated[_StatusForm, Depends(_status_form)]


@router.post("/case-status/{case_id}/hashes")
def status_hashes(form: StatusForm, hashes: Annotated[str, Form(max_length=100000)] = "") -> Response:
    """Lines of `signal value` (pdq, md5, sha256) computed on the victim's own device."""
    items = []
    for line in hashes.splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) == 2:
            items.append((parts[0], parts[1]))
        elif len(parts) == 1:
            items.append(("md5" if len(parts[0]) == 32 else "pdq", parts[0]))

    return form.run(lambda cid: f"{flows.add_victim_hashes(form.ctx, cid, items, actor='victim')} hash(es) added")


INFO_FIELDS = (
    "category",
    "jurisdiction",
    "content_locations",
    "explanation",
    "good_faith",
    "signature",
    "reporter_name",
    "reporter_email",
    "reporter_contact",
    "reporter_role",
)


@router.post("/case-status/{case_id}/info")
async def status_info(case_id: str, request: Request, ctx: CasesDep) -> Response:
    """The reporter adds what the notice lacked; the validity check runs again (the clock starts if complete)."""
    cid = _victim_case(request, case_id)
    form = await request.form()
    updates: dict[str, Any] = {}
    for name in INFO_FIELDS:
        raw = form.get(name)
        if raw is None or not isinstance(raw, str) or not raw.strip():
            continue
        value = raw.strip()[:10000]
        if name == "content_locations":
            updates[name] = value.split()
        elif name == "good_faith":
            updates[name] = True
        else:
            updates[name] = value

    def step() -> str:
        if not updates:
            raise DeepshieldError("nothing was filled in")
        with session_scope(ctx.settings) as s:
            state = service.supply_info(s, cid, updates, "reporter", "human", ctx.policy).state
        return "Thank you: the report is complete." if state == "valid" else "Saved; something is still missing."

    return _form_post(request, str(form.get("csrf", "")), step, _to_status(cid))


@router.post("/case-status/{case_id}/withdraw")
def status_withdraw(case_id: str, request: Request, ctx: CasesDep, csrf: Annotated[str, Form()] = "") -> Response:
    cid = _victim_case(request, case_id)
    check_csrf(request, csrf)
    n = flows.withdraw(ctx, cid, actor="victim")  # only a lost race fails here: a 409, not a page message
    return _status_back(cid, msg=f"Withdrawn: {n} hash(es) removed from every bank.")


@router.post("/case-status/{case_id}/appeal")
def status_appeal(form: StatusForm, reason: Annotated[str, Form(max_length=4000)] = "") -> Response:
    def step(cid: str) -> str:
        flows.file_appeal(form.ctx, cid, filed_by="reporter", actor_kind="human", reason=reason)
        return "Appeal filed: a person will review the decision."

    return form.run(step)
