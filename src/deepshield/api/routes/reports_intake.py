"""Report intake: the API for platforms (scope `cases`, Idempotency-Key) and the public web form (no key,
rate limited, CSRF-protected, one report per form even when submitted twice)."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from deepshield.api.deps import CasesDep, OptionalUser, SettingsDep, check_csrf, csrf_token
from deepshield.api.routes.cases import CasesPrincipal, actor_kind, client_key
from deepshield.api.uploads import save_upload
from deepshield.cases import intake, screening
from deepshield.cases.context import CasesContext
from deepshield.cases.intake import Receipt
from deepshield.cases.ratelimit import FORM
from deepshield.cases.validity import CATEGORIES, ROLES, ReportFields
from deepshield.errors import DeepshieldError
from deepshield.media import Media

router = APIRouter(tags=["reports"])
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


class ReportIn(BaseModel):
    """TAKE IT DOWN Act + DSA Art. 16 notice. Missing fields do not fail the request: the case is stored as
    `needs_info` and the response lists exactly what is missing."""

    category: str = Field(default="", max_length=32, description=", ".join(CATEGORIES))
    jurisdiction: str = Field(default="", max_length=8, description="country or region code: US, EU, UK, DE...")
    content_locations: list[str] = Field(default_factory=list, max_length=100, description="exact URL(s)")
    explanation: str = Field(default="", max_length=10000, description="why the content is illegal")
    good_faith: StrictBool = Field(default=False, description="good-faith / bona fide statement (true or false only)")
    signature: str = Field(default="", max_length=256, description="physical or electronic signature")
    reporter_name: str = Field(default="", max_length=256)
    reporter_email: str = Field(default="", max_length=256)
    reporter_contact: str = Field(default="", max_length=512, description="other contact (phone, address)")
    reporter_role: str = Field(default="", max_length=32, description=", ".join(ROLES))

    def fields(self) -> ReportFields:
        return ReportFields(**self.model_dump())


@router.post(
    "/v1/reports",
    status_code=201,
    responses={
        200: {"description": "replay of an earlier submission"},
        422: {"description": "Idempotency-Key reused"},
    },
)
def create_report(
    body: ReportIn,
    ctx: CasesDep,
    principal: CasesPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> Any:
    """File a report. Send an `Idempotency-Key` header: a retry with the same key returns the same case."""
    r = intake.submit(
        ctx,
        body.fields(),
        source="api",
        submitted_by=principal.name,
        actor_kind=actor_kind(principal),
        idempotency_key=idempotency_key,
        client=f"{principal.kind}:{principal.id}",
    )
    return JSONResponse(
        r.to_dict(),
        status_code=200 if r.replayed else 201,
        headers={"Idempotent-Replayed": "true"} if r.replayed else {},
    )


def _form_ctx(request: Request, user: Any, **extra: Any) -> dict[str, Any]:
    return {
        "user": user,
        "csrf": csrf_token(request),
        "categories": CATEGORIES,
        "roles": ROLES,
        "submission_id": secrets.token_urlsafe(16),
        **extra,
    }


@router.get("/report", response_class=HTMLResponse, include_in_schema=False)
def report_form(request: Request, user: OptionalUser) -> Response:
    return templates.TemplateResponse(request, "cases/report_form.html", _form_ctx(request, user, values={}))


@dataclass
class ReportForm:
    """The public form as sent: the notice, the URLs as typed (shown again after an error), the CSRF token and
    the form's own id (a form sent twice files one report)."""

    csrf: str
    submission_id: str
    fields: ReportFields
    locations_typed: str

    def values(self) -> dict[str, Any]:
        return {**asdict(self.fields), "content_locations": self.locations_typed}


def report_form_fields(
    csrf: Annotated[str, Form()] = "",
    submission_id: Annotated[str, Form(max_length=64)] = "",
    category: Annotated[str, Form(max_length=32)] = "",
    jurisdiction: Annotated[str, Form(max_length=8)] = "",
    content_locations: Annotated[str, Form(max_length=20000)] = "",
    explanation: Annotated[str, Form(max_length=10000)] = "",
    good_faith: Annotated[str, Form(max_length=8)] = "",
    signature: Annotated[str, Form(max_length=256)] = "",
    reporter_name: Annotated[str, Form(max_length=256)] = "",
    reporter_email: Annotated[str, Form(max_length=256)] = "",
    reporter_contact: Annotated[str, Form(max_length=512)] = "",
    reporter_role: Annotated[str, Form(max_length=32)] = "",
) -> ReportForm:
    """The form's fields, each with its limit (a dependency, so the route reads as what it does)."""
    fields = ReportFields(
        category=category,
        jurisdiction=jurisdiction,
        content_locations=content_locations.split(),
        explanation=explanation,
        good_faith=bool(good_faith),
        signature=signature,
        reporter_name=reporter_name,
        reporter_email=reporter_email,
        reporter_contact=reporter_contact,
        reporter_role=reporter_role,
    )
    return ReportForm(csrf, submission_id, fields, content_locations)


@router.post("/report", response_class=HTMLResponse, include_in_schema=False)
async def report_submit(
    request: Request,
    user: OptionalUser,
    settings: SettingsDep,
    ctx: CasesDep,
    form: Annotated[ReportForm, Depends(report_form_fields)],
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Rate limited per client. The upload streams in here; storing the report and its media is blocking work
    and runs in the threadpool. A refused upload brings the form back with what was typed."""
    check_csrf(request, form.csrf)
    try:
        FORM.hit(client_key(request))
        upload = await save_upload(file, settings) if file is not None and file.filename else None
    except DeepshieldError as e:
        page = _form_ctx(request, user, values=form.values(), error=e.message)
        return templates.TemplateResponse(request, "cases/report_form.html", page, status_code=e.http_status)
    receipt = await run_in_threadpool(_file_report, ctx, form, upload, file.filename if file else None)
    return templates.TemplateResponse(
        request,
        "cases/receipt.html",
        {"user": user, "csrf": csrf_token(request), "r": receipt.to_dict()},
        status_code=200 if receipt.replayed else 201,
    )


def _file_report(
    ctx: CasesContext, form: ReportForm, upload: tuple[Path, Media] | None, filename: str | None
) -> Receipt:
    """Store the report, then its media (a form sent again already has them)."""
    receipt = intake.submit(
        ctx,
        form.fields,
        source="form",
        submitted_by="public-form",
        actor_kind="human",
        idempotency_key=f"form:{form.submission_id}" if form.submission_id else None,
    )
    if upload is not None and not receipt.replayed:
        path, media = upload
        kind = media.info.kind.value
        screening.attach_media(ctx, receipt.case_id, path, filename or path.name, kind, "public-form", "human")
    return receipt
