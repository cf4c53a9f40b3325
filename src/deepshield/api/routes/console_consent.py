"""Consent in the console: the requests whose checks asked for a person (each check's evidence in plain words,
approve to issue the credential, reject with a reason), and the credentials issued (state, scope, expiry),
which a lead can revoke. Thin: the rules, and the audit entries, are in `consent.service`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from deepshield.accounts.models import User
from deepshield.api.consoleui import need_user, page
from deepshield.api.deps import ConsentDep, OptionalUser, SessionDep, check_csrf
from deepshield.errors import DeepshieldError
from deepshield.store.db import session_scope

router = APIRouter(include_in_schema=False)
ConsentId = Annotated[str, PathParam(min_length=1, max_length=64, pattern="^[0-9a-f]+$")]
REVIEW = "/console/consents/review"
LIST = "/console/consents"


def _page(request: Request, name: str, user: User, **ctx: Any) -> Response:
    """A consent page with the message or the error the last form left in the query."""
    q = request.query_params
    return page(request, f"cases/{name}.html", user, message=q.get("msg"), error=q.get("error"), **ctx)


def _post(request: Request, csrf: str, back: str, step: Callable[[Session], str]) -> Response:
    """A consent form: CSRF checked, the step run in its own transaction, back to the page with its message,
    or with the error a person acts on (a stale page, a missing reason)."""
    check_csrf(request, csrf)
    try:
        with session_scope(request.app.state.settings) as s:
            msg = step(s)
    except DeepshieldError as e:
        return RedirectResponse(f"{back}?error={quote(e.message)}", status_code=303)
    return RedirectResponse(f"{back}?msg={quote(msg)}", status_code=303)


@router.get(REVIEW, response_class=HTMLResponse)
def review_page(request: Request, user: OptionalUser, session: SessionDep, svc: ConsentDep) -> Response:
    items = [svc.public_request(r) for r in svc.review_queue(session)]
    return _page(request, "consent_review", need_user(request, user), items=items)


@router.post("/console/consents/{request_id}/review")
def review_decide(
    request_id: ConsentId,
    request: Request,
    user: OptionalUser,
    svc: ConsentDep,
    csrf: Annotated[str, Form()] = "",
    decision: Annotated[str, Form(pattern="^(approve|reject)$")] = "approve",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve (the credential is signed now) or reject with a reason the provider reads."""
    u = need_user(request, user)

    def step(s: Session) -> str:
        issued = svc.resolve_review(s, request_id, decision == "approve", u.username, reason)
        if issued is None:
            return f"consent {request_id} rejected: no credential"
        return f"consent {request_id} approved: credential {issued.credential.id} issued"

    return _post(request, csrf, REVIEW, step)


@router.get(LIST, response_class=HTMLResponse)
def consents_page(request: Request, user: OptionalUser, session: SessionDep, svc: ConsentDep) -> Response:
    u = need_user(request, user)
    return _page(
        request, "consents", u, credentials=svc.credential_rows(session), waiting=len(svc.review_queue(session))
    )


@router.post("/console/consents/credentials/{credential_id}/revoke")
def revoke(
    credential_id: ConsentId,
    request: Request,
    user: OptionalUser,
    svc: ConsentDep,
    csrf: Annotated[str, Form()] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """A lead revokes a credential (as the operator): every verifier reads it revoked from the next check."""
    u = need_user(request, user, admin=True)

    def step(s: Session) -> str:
        svc.revoke_by_provider(s, credential_id, u.username, admin=True, reason=reason)
        return f"credential {credential_id} revoked"

    return _post(request, csrf, LIST, step)
