"""Consent in the console: the requests whose checks asked for a person (each check's evidence in plain words,
approve to issue the credential, reject with a reason), and the credentials issued (state, scope, expiry),
which a lead can revoke. Thin: the rules, and the audit entries, are in `consent.service`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from deepshield.api.consoleui import need_user, page
from deepshield.api.deps import ConsentDep, OptionalUser, SessionDep, check_csrf
from deepshield.errors import DeepshieldError
from deepshield.store.db import session_scope

router = APIRouter(include_in_schema=False)
ConsentId = Annotated[str, PathParam(min_length=1, max_length=64, pattern="^[0-9a-f]+$")]
REVIEW = "/console/consents/review"
LIST = "/console/consents"


def _back(where: str, msg: str = "", error: str = "") -> RedirectResponse:
    return RedirectResponse(f"{where}?{'error=' + quote(error) if error else 'msg=' + quote(msg)}", status_code=303)


@router.get(REVIEW, response_class=HTMLResponse)
def review_page(request: Request, user: OptionalUser, session: SessionDep, svc: ConsentDep) -> Response:
    u = need_user(request, user)
    return page(
        request,
        "cases/consent_review.html",
        u,
        items=[svc.public_request(r) for r in svc.review_queue(session)],
        message=request.query_params.get("msg"),
        error=request.query_params.get("error"),
    )


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
    check_csrf(request, csrf)
    approve = decision == "approve"
    try:
        with session_scope(request.app.state.settings) as s:
            issued = svc.resolve_review(s, request_id, approve, u.username, reason)
    except DeepshieldError as e:
        return _back(REVIEW, error=e.message)
    if issued is not None:
        return _back(REVIEW, f"consent {request_id} approved: credential {issued.credential.id} issued")
    return _back(REVIEW, f"consent {request_id} rejected: no credential")


@router.get(LIST, response_class=HTMLResponse)
def consents_page(request: Request, user: OptionalUser, session: SessionDep, svc: ConsentDep) -> Response:
    u = need_user(request, user)
    return page(
        request,
        "cases/consents.html",
        u,
        credentials=svc.credential_rows(session),
        waiting=len(svc.review_queue(session)),
        message=request.query_params.get("msg"),
        error=request.query_params.get("error"),
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
    check_csrf(request, csrf)
    try:
        with session_scope(request.app.state.settings) as s:
            svc.revoke_by_provider(s, credential_id, u.username, admin=True, reason=reason)
    except DeepshieldError as e:
        return _back(LIST, error=e.message)
    return _back(LIST, f"credential {credential_id} revoked")
