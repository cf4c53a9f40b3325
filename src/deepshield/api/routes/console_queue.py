"""The reviewer's queue (search, filters, closed cases), "next case", and claiming: claim, release, and a
lead's assignment. Thin: the rules are in `cases.queue` and `cases.claims`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from deepshield.accounts.models import User
from deepshield.api.consoleui import need_user, page
from deepshield.api.deps import CasesDep, OptionalUser, SessionDep, check_csrf
from deepshield.cases import claims, queue, validity, wording
from deepshield.cases.context import CasesContext
from deepshield.cases.models import UploadScreening
from deepshield.errors import DeepshieldError
from deepshield.store.db import session_scope

router = APIRouter(include_in_schema=False)


@router.get("/console", response_class=HTMLResponse)
def queue_page(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    ctx: CasesDep,
    q: Annotated[str, Query(max_length=200)] = "",
    category: Annotated[str, Query(max_length=32)] = "",
    state: Annotated[str, Query(max_length=16)] = "",
    deadline: Annotated[str, Query(pattern="^(|overdue|due_soon)$")] = "",
    jurisdiction: Annotated[str, Query(max_length=8)] = "",
    assigned: Annotated[str, Query(pattern="^(|me|unassigned)$")] = "",
    view: Annotated[str, Query(pattern="^(|open|closed)$")] = "",
) -> Response:
    u = need_user(request, user)
    f = queue.QueueFilter(q, category, state, deadline, jurisdiction, assigned, closed=view == "closed")
    items = queue.search(session, ctx.policy, f, u.username)
    uploads = list(
        session.scalars(
            select(UploadScreening)
            .where(UploadScreening.decision == "review")
            .order_by(UploadScreening.at.desc())
            .limit(50)
        )
    )
    return page(
        request,
        "cases/queue.html",
        u,
        items=items,
        f=f,
        categories=validity.CATEGORIES,
        states=wording.STATES,
        open_states=queue.CLOSED_STATES if f.closed else queue.OPEN_STATES,
        uploads=uploads,
        message=request.query_params.get("msg"),
        error=request.query_params.get("error"),
    )


def claim_next_location(ctx: CasesContext, who: str) -> str:
    """Where "next case" goes: the claimed case, or the queue saying why there is none."""
    try:
        with session_scope(ctx.settings) as s:
            case_id = claims.claim_next(s, who).id
    except claims.NothingToClaim as e:
        return "/console?msg=" + quote(e.message)
    return f"/console/cases/{case_id}"


@router.post("/console/next")
def next_case(request: Request, user: OptionalUser, ctx: CasesDep, csrf: Annotated[str, Form()] = "") -> Response:
    """Claim the unclaimed case with the least time left and open it."""
    u = need_user(request, user)
    check_csrf(request, csrf)
    return RedirectResponse(claim_next_location(ctx, u.username), status_code=303)


def _claim_step(
    request: Request, ctx: CasesContext, u: User, case_id: str, csrf: str, step: str, assignee: str = ""
) -> Response:
    check_csrf(request, csrf)
    try:
        with session_scope(ctx.settings) as s:
            if step == "claim":
                claims.claim(s, case_id, u.username)
            elif step == "release":
                claims.release(s, case_id, u.username, lead=u.role == "admin")
            else:
                claims.assign(s, case_id, assignee, lead=u.username)
    except DeepshieldError as e:
        return RedirectResponse(f"/console/cases/{quote(case_id)}?error={quote(e.message)}", status_code=303)
    return RedirectResponse(f"/console/cases/{quote(case_id)}", status_code=303)


@router.post("/console/cases/{case_id}/claim")
def claim_case(
    case_id: str, request: Request, user: OptionalUser, ctx: CasesDep, csrf: Annotated[str, Form()] = ""
) -> Response:
    return _claim_step(request, ctx, need_user(request, user), case_id, csrf, "claim")


@router.post("/console/cases/{case_id}/release")
def release_case(
    case_id: str, request: Request, user: OptionalUser, ctx: CasesDep, csrf: Annotated[str, Form()] = ""
) -> Response:
    return _claim_step(request, ctx, need_user(request, user), case_id, csrf, "release")


@router.post("/console/cases/{case_id}/assign")
def assign_case(
    case_id: str,
    request: Request,
    user: OptionalUser,
    ctx: CasesDep,
    csrf: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form(min_length=1, max_length=128)] = "",
) -> Response:
    """Leads (admins) assign a case to a reviewer."""
    u = need_user(request, user, admin=True)
    return _claim_step(request, ctx, u, case_id, csrf, "assign", assignee.strip())
