"""Banks and matches in the console: the banks with their counts, a bank's entries, the matches an entry
produced, removing an entry (leads only, audited), and one decision on the open cases an entry matched. Thin:
the rules are in `cases.bankview` and `cases.bulk`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from deepshield.api.consoleui import need_user, page
from deepshield.api.deps import CasesDep, OptionalUser, SessionDep, check_csrf
from deepshield.cases import bankview, bulk
from deepshield.errors import DeepshieldError
from deepshield.store.bounds import DB_INT_MAX
from deepshield.store.db import session_scope

router = APIRouter(include_in_schema=False)
EntryId = Annotated[int, PathParam(ge=1, le=DB_INT_MAX)]


@router.get("/console/banks", response_class=HTMLResponse)
def banks_page(request: Request, user: OptionalUser, session: SessionDep) -> Response:
    u = need_user(request, user)
    return page(request, "cases/banks.html", u, banks=bankview.banks(session), message=request.query_params.get("msg"))


@router.get("/console/banks/{bank}", response_class=HTMLResponse)
def bank_page(
    bank: Annotated[str, PathParam(max_length=128)],
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> Response:
    u = need_user(request, user)
    info, entries = bankview.entries(session, bank, limit=100, offset=offset)
    return page(request, "cases/bank.html", u, bank=info, entries=entries, offset=offset)


@router.get("/console/bank-entries/{entry_id}", response_class=HTMLResponse)
def entry_page(entry_id: EntryId, request: Request, user: OptionalUser, session: SessionDep, ctx: CasesDep) -> Response:
    u = need_user(request, user)
    found = bankview.entry_matches(session, entry_id, ctx.policy.screening.pdq_review_distance)
    return page(
        request,
        "cases/bank_entry.html",
        u,
        e=found.entry,
        matches=found.matches,
        open_cases=found.open_cases,
        message=request.query_params.get("msg"),
        error=request.query_params.get("error"),
    )


@router.post("/console/bank-entries/{entry_id}/remove")
def remove_entry(
    entry_id: EntryId,
    request: Request,
    user: OptionalUser,
    ctx: CasesDep,
    csrf: Annotated[str, Form()] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """A lead takes one item out of its bank (a wrong hash, a reversed case); the audit trail records it."""
    u = need_user(request, user, admin=True)
    check_csrf(request, csrf)
    with session_scope(ctx.settings) as s:
        e = bankview.remove_entry(s, entry_id, u.username, reason)
    return RedirectResponse(f"/console/banks/{e.bank}?msg=" + quote(f"entry {e.id} removed"), status_code=303)


@router.post("/console/bank-entries/{entry_id}/bulk-decide")
def bulk_decide(
    entry_id: EntryId,
    request: Request,
    user: OptionalUser,
    ctx: CasesDep,
    csrf: Annotated[str, Form()] = "",
    case: Annotated[list[str] | None, Form()] = None,
    action: Annotated[list[str] | None, Form()] = None,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """One decision with one reason on the selected cases this entry matched; each case its own audit
    entries and statement."""
    u = need_user(request, user)
    check_csrf(request, csrf)
    back = f"/console/bank-entries/{entry_id}"
    try:
        r = bulk.bulk_decide(
            ctx, case or [], action or [], actor=u.username, reason=reason, group=f"bank entry {entry_id}"
        )
    except DeepshieldError as e:
        return RedirectResponse(f"{back}?error={quote(e.message)}", status_code=303)
    msg = f"{len(r.decided)} case(s) decided" + (
        "; not decided: " + "; ".join(f"{c}: {why}" for c, why in r.failed.items()) if r.failed else ""
    )
    return RedirectResponse(f"{back}?msg={quote(msg)}", status_code=303)
