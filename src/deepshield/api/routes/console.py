"""The review console (server-rendered; reviewers and admins sign in). The victim's pages are in case_status.py.

Media previews are blurred on the server until the reviewer chooses to look; each reveal is audited. Every
form carries the session's CSRF token, and every decision carries the case version the reviewer saw."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from deepshield.accounts.models import User
from deepshield.api.consoleui import need_user, page
from deepshield.api.deps import CasesDep, OptionalUser, SessionDep, check_csrf
from deepshield.api.routes.console_queue import claim_next_location
from deepshield.cases import (
    audit,
    claims,
    deadlines,
    flows,
    matchhistory,
    reasons,
    service,
    validity,
    webhooks,
    wording,
)
from deepshield.cases.context import CasesContext
from deepshield.cases.models import (
    Appeal,
    CaseAction,
    CaseEvidence,
    CaseMedia,
    StatementOfReasons,
)
from deepshield.errors import DeepshieldError
from deepshield.store.bounds import DB_INT_MAX
from deepshield.store.db import session_scope

router = APIRouter(include_in_schema=False)


@router.get("/console/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: str, request: Request, user: OptionalUser, session: SessionDep, ctx: CasesDep) -> Response:
    u = need_user(request, user)
    case = service.get_case(session, case_id)
    media = list(session.scalars(select(CaseMedia).where(CaseMedia.case_id == case.id)))
    revealed = set(request.session.get("revealed", []))
    evidence = list(session.scalars(select(CaseEvidence).where(CaseEvidence.case_id == case.id)))
    return page(
        request,
        "cases/case.html",
        u,
        case=case,
        deadline=deadlines.deadline(case, ctx.policy),
        locations=json.loads(case.content_locations),
        missing=json.loads(case.missing),
        media=media,
        revealed=revealed,
        evidence=[(e, _evidence_words(e, case.category)) for e in evidence],
        timeline=service.timeline(session, case.id),
        events=audit.events_for_case(session, case.id),
        actions=list(session.scalars(select(CaseAction).where(CaseAction.case_id == case.id))),
        statements=reasons.statements_for(session, case.id),
        appeals=list(session.scalars(select(Appeal).where(Appeal.case_id == case.id))),
        categories=validity.CATEGORIES,
        error=request.query_params.get("error"),
        history=matchhistory.history(session, case.id),
        roles=validity.ROLES,
        reviewers=claims.reviewers(session) if u.role == "admin" else [],
    )


def _evidence_words(e: CaseEvidence, category: str) -> str:
    data = json.loads(e.data)
    return wording.evidence_line(e.kind, data.get("decision"), e.summary, category, data)


@router.post("/console/cases/{case_id}/reveal/{media_id}")
def reveal(
    case_id: str,
    media_id: Annotated[int, PathParam(ge=1, le=DB_INT_MAX)],
    request: Request,
    user: OptionalUser,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    u = need_user(request, user)
    check_csrf(request, csrf)
    with session_scope(request.app.state.settings) as s:
        m = s.get(CaseMedia, media_id)
        if m is None or m.case_id != case_id:
            raise HTTPException(404, "no such media")
        audit.record(
            s,
            actor=u.username,
            actor_kind="human",
            action="media_revealed",
            case_id=case_id,
            reason="reviewer chose to view the media",
            evidence=[m.sha256],
        )
    request.session["revealed"] = sorted(set(request.session.get("revealed", [])) | {media_id})
    return RedirectResponse(f"/console/cases/{case_id}#media", status_code=303)


@router.get("/console/media/{media_id}")
def media_file(
    media_id: Annotated[int, PathParam(ge=1, le=DB_INT_MAX)], request: Request, user: OptionalUser, session: SessionDep
) -> Response:
    """The original only after a reveal; before that a heavily blurred JPEG made on the server."""
    need_user(request, user)
    m = session.get(CaseMedia, media_id)
    if m is None:
        raise HTTPException(404, "no such media")
    revealed = media_id in set(request.session.get("revealed", []))
    if revealed and m.kind in ("image", "video"):
        return Response(Path(m.path).read_bytes(), media_type=_mime(m.path), headers={"Cache-Control": "no-store"})
    return Response(
        _preview(Path(m.path), blur=not revealed),
        media_type="image/jpeg",
        headers={"Cache-Control": "no-store"},
    )


def _mime(path: str) -> str:
    import mimetypes

    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def _preview(path: Path, blur: bool) -> bytes:
    from PIL import Image, ImageFilter

    from deepshield.media import representative_frame

    try:
        img = Image.fromarray(representative_frame(path))
    except DeepshieldError:
        img = Image.new("RGB", (320, 240), (120, 120, 120))
    img.thumbnail((480, 480))
    if blur:  # coarse enough that no face or body detail survives
        img = img.resize((max(1, img.width // 40), max(1, img.height // 40))).resize(img.size)
        img = img.filter(ImageFilter.GaussianBlur(18))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _back(case_id: str, error: str | None = None) -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse(f"/console/cases/{case_id}" + (f"?error={quote(error)}" if error else ""), status_code=303)


def _form_post(request: Request, csrf: str, step: Callable[[], str], back: Callable[[str, str], Response]) -> Response:
    """A console or status-page form whose step can fail in a way a person acts on (a stale version, a closed
    appeal window): CSRF checked, the step run, then back to the page with its message or its error."""
    check_csrf(request, csrf)
    try:
        msg = step()
    except DeepshieldError as e:
        return back("", e.message)
    return back(msg, "")


@dataclass(frozen=True)
class _CaseForm:
    """What every reviewer form on a case page posts besides its own fields: the case, the CSRF token and the
    version the page showed (a stale one is a conflict, never a second action)."""

    case_id: str
    request: Request
    user: User | None
    ctx: CasesContext
    csrf: str
    version: int

    def run(self, step: Callable[[str], object], then_next: bool = False) -> Response:
        """A signed-in reviewer, the CSRF token checked, the step run with the reviewer's name, then back to
        the case page (with the error a person acts on, if any), or on success on to the next case."""
        u = need_user(self.request, self.user)

        def as_reviewer() -> str:
            step(u.username)
            return ""

        def back(msg: str, error: str) -> Response:
            if then_next and not error:
                return RedirectResponse(claim_next_location(self.ctx, u.username), status_code=303)
            return _back(self.case_id, error or None)

        return _form_post(self.request, self.csrf, as_reviewer, back)


def _case_form(
    case_id: str,
    request: Request,
    user: OptionalUser,
    ctx: CasesDep,
    csrf: Annotated[str, Form()] = "",
    version: Annotated[int, Form(ge=0, le=DB_INT_MAX)] = 0,
) -> _CaseForm:
    return _CaseForm(case_id, request, user, ctx, csrf, version)


CaseForm = Annotated[_CaseForm, Depends(_case_form)]


@router.post("/console/cases/{case_id}/review")
def console_review(form: CaseForm) -> Response:
    return form.run(lambda actor: flows.start_review(form.ctx, form.case_id, actor, expected_version=form.version))


@router.post("/console/cases/{case_id}/decide")
def console_decide(
    form: CaseForm,
    action: Annotated[list[str] | None, Form()] = None,
    reason: Annotated[str, Form(max_length=4000)] = "",
    facts: Annotated[str, Form(max_length=4000)] = "",
    territorial_scope: Annotated[str, Form(max_length=200)] = "",
    then: Annotated[str, Form(pattern="^(|next)$")] = "",
) -> Response:
    """Apply the decision; with `then=next`, claim and open the next case (one page load per case)."""
    return form.run(
        lambda actor: flows.decide(
            form.ctx,
            form.case_id,
            action or [],
            actor=actor,
            actor_kind="human",
            reason=reason,
            expected_version=form.version,
            facts=facts,
            territorial_scope=territorial_scope,
        ),
        then_next=then == "next",
    )


@router.post("/console/cases/{case_id}/appeal-decision")
def console_appeal(
    form: CaseForm,
    outcome: Annotated[str, Form()] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    return form.run(
        lambda actor: flows.decide_appeal(
            form.ctx,
            form.case_id,
            outcome,
            actor=actor,
            actor_kind="human",
            reason=reason,
            expected_version=form.version,
        )
    )


@router.get("/console/admin", response_class=HTMLResponse)
def admin_page(request: Request, user: OptionalUser, session: SessionDep, ctx: CasesDep) -> Response:
    u = need_user(request, user, admin=True)
    return page(
        request,
        "cases/admin.html",
        u,
        dead=webhooks.dead_letters(session),
        verify=audit.verify(session),
        policy=ctx.policy,
        pending=webhooks.pending_count(session),
        message=request.query_params.get("msg"),
    )


@router.post("/console/admin/requeue")
def admin_requeue(request: Request, user: OptionalUser, ctx: CasesDep, csrf: Annotated[str, Form()] = "") -> Response:
    need_user(request, user, admin=True)
    check_csrf(request, csrf)
    with session_scope(ctx.settings) as s:
        n = webhooks.requeue(s)
    ctx.kick()
    return RedirectResponse(f"/console/admin?msg=requeued+{n}", status_code=303)


@router.get("/statements/{statement_id}", response_class=HTMLResponse)
def statement_page(statement_id: str, request: Request, user: OptionalUser, session: SessionDep) -> Response:
    """The statement of reasons as the affected user and the notifier see it (its id is unguessable)."""
    sor = session.get(StatementOfReasons, statement_id)
    if sor is None:
        raise HTTPException(404, "no such statement")
    return page(request, "cases/statement.html", user, s=reasons.statement_dict(sor))
