"""Report intake: the API for platforms (scope `cases`, Idempotency-Key) and the public web form (no key,
rate limited, CSRF-protected, one report per form even when submitted twice, and no case at all until the
notice is complete: the form comes back with each problem beside its field)."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, StrictBool, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from deepshield.api.deps import CasesDep, OptionalUser, SettingsDep, check_csrf, client_key, csrf_token
from deepshield.api.routes.cases import CasesPrincipal, actor_kind
from deepshield.api.uploads import save_upload
from deepshield.cases import intake, screening
from deepshield.cases.context import CasesContext
from deepshield.cases.intake import Receipt
from deepshield.cases.ratelimit import FORM, RateLimited
from deepshield.cases.validity import CATEGORIES, EU, ROLES, ReportFields, check_validity
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
        "eu": sorted(EU),
        "submission_id": secrets.token_urlsafe(16),
        **extra,
    }


@router.get("/report", response_class=HTMLResponse, include_in_schema=False)
def report_form(request: Request, user: OptionalUser) -> Response:
    return templates.TemplateResponse(request, "cases/report_form.html", _form_ctx(request, user, values={}))


@dataclass
class ReportForm:
    """The public form as sent: the notice, the URLs as typed (shown again after an error) and the form's own id
    (a form sent twice files one report)."""

    submission_id: str
    fields: ReportFields
    locations_typed: str

    def values(self) -> dict[str, Any]:
        return {**asdict(self.fields), "content_locations": self.locations_typed}


class ReportFormIn(BaseModel):
    """The form's text fields, each with its limit (the route reads the body itself, after its checks)."""

    submission_id: str = Field(default="", max_length=64)
    category: str = Field(default="", max_length=32)
    jurisdiction: str = Field(default="", max_length=8)
    content_locations: str = Field(default="", max_length=20000)
    explanation: str = Field(default="", max_length=10000)
    good_faith: str = Field(default="", max_length=8)
    signature: str = Field(default="", max_length=256)
    reporter_name: str = Field(default="", max_length=256)
    reporter_email: str = Field(default="", max_length=256)
    reporter_contact: str = Field(default="", max_length=512)
    reporter_role: str = Field(default="", max_length=32)

    @classmethod
    def read(cls, raw: FormData) -> ReportForm:
        """The form as posted; a field over its limit is a 422, as for every other form."""
        try:
            f = cls.model_validate({k: v for k, v in raw.items() if k in cls.model_fields and isinstance(v, str)})
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from None
        fields = ReportFields(
            **f.model_dump(exclude={"submission_id", "content_locations", "good_faith"}),
            content_locations=f.content_locations.split(),
            good_faith=bool(f.good_faith),
        )
        return ReportForm(f.submission_id, fields, f.content_locations)


@router.post("/report", response_class=HTMLResponse, include_in_schema=False)
async def report_submit(
    request: Request,
    user: OptionalUser,
    settings: SettingsDep,
    ctx: CasesDep,
    csrf: Annotated[str, Query(max_length=128, description="the form's token, in its action URL")] = "",
) -> Response:
    """Anyone may post here, so the CSRF token and the per-client rate limit are checked from the URL and the
    connection before the body is read: a forged or flooding post is refused without taking in its upload
    (the token is in the form's action URL, as the body is not read yet). Then the upload streams in; storing
    the report and its media is blocking work and runs in the threadpool. A refused upload brings the form
    back with what was typed."""
    check_csrf(request, csrf)
    try:
        FORM.hit(client_key(request))
    except RateLimited as e:
        page = _form_ctx(request, user, values={}, error=e.message)
        return templates.TemplateResponse(request, "cases/report_form.html", page, status_code=e.http_status)
    async with request.form(max_files=1, max_fields=20) as raw:
        form = ReportFormIn.read(raw)
        file = raw.get("file")
        filename = file.filename if isinstance(file, UploadFile) else None
        if missing := check_validity(form.fields):
            # The same rules as the page's script: nothing is stored (no case, no upload) until all is there.
            errors = {m.field: m.why for m in missing}
            page = _form_ctx(request, user, values=form.values(), errors=errors, had_file=bool(filename))
            return templates.TemplateResponse(request, "cases/report_form.html", page, status_code=422)
        try:
            upload = await save_upload(file, settings) if isinstance(file, UploadFile) and filename else None
        except DeepshieldError as e:
            page = _form_ctx(request, user, values=form.values(), error=e.message)
            return templates.TemplateResponse(request, "cases/report_form.html", page, status_code=e.http_status)
    receipt = await run_in_threadpool(_file_report, ctx, form, upload, filename)
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
