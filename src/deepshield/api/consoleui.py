"""What the console's page modules share: the templates (with the plain-word filters of
`deepshield.cases.wording`), the reviewer check and the page renderer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from deepshield.accounts.models import User
from deepshield.api.deps import csrf_token
from deepshield.cases import wording

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))


def _when(value: dt.datetime | str | None) -> Markup:
    """A `<time>` the browser rewrites to the viewer's local time and zone (static/localtime.js); without
    script it reads as UTC, to the minute."""
    iso = wording.iso_utc(value)
    if not iso:
        return Markup("—")
    return Markup('<time datetime="{}">{}</time>').format(iso, wording.utc_text(value))


def _link(url: str) -> Markup:
    """A content URL as a link when it is http(s), else as code; the page it opens gets no handle on ours."""
    href = wording.safe_link(url)
    if href is None:
        return Markup("<code>{}</code>").format(url)
    return Markup('<a href="{}" rel="noopener noreferrer nofollow" target="_blank">{}</a>').format(href, escape(url))


templates.env.filters.update(
    state_label=wording.state_label,
    decision_label=wording.decision_label,
    action_label=wording.action_label,
    code_label=wording.code_label,
    audit_label=wording.audit_label,
    next_step=wording.next_step,
    screening_reasons=wording.screening_reasons,
    consent_state_label=wording.consent_state_label,
    consent_request_label=wording.consent_request_label,
    consent_verdict_label=wording.consent_verdict_label,
    consent_check_line=wording.consent_check_line,
    when=_when,
    link=_link,
)


def need_user(request: Request, user: User | None, admin: bool = False) -> User:
    if user is None:
        raise HTTPException(303, headers={"Location": f"/login?next={request.url.path}"})
    if user.role not in ("reviewer", "admin"):
        raise HTTPException(403, "reviewers only")
    if admin and user.role != "admin":
        raise HTTPException(403, "admins only")
    return user


def page(request: Request, name: str, user: Any, status: int = 200, **ctx: Any) -> Response:
    return templates.TemplateResponse(
        request, name, {"user": user, "csrf": csrf_token(request), **ctx}, status_code=status
    )
