"""Consent API (scope `consent`: the provider's backend; `review`: the console), the capture page (the person,
holding only the capture token) and the public endpoints every verifier and the person use.

The provider opens a request with the source media (uploaded, or SHA-256 of media uploaded before) and hands
`capture_url` to the person. The capture page starts the consent's liveness session, shows the sentence to read
aloud, records video with sound and uploads it once; the checks run during that upload. The page learns no
outcome, only the reference and PIN that withdraw the consent. The provider reads the outcome and the credential.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from typing_extensions import TypedDict

from deepshield.accounts.service import Principal
from deepshield.api.deps import ConsentDep, SessionDep, SettingsDep, require_scope
from deepshield.api.uploads import save_upload, save_video_upload
from deepshield.consent.service import ConsentNotFound, WrongPin
from deepshield.consent.sources import SourceFile, find_stored, sources_dir
from deepshield.errors import MediaError
from deepshield.media import MediaKind
from deepshield.store.bounds import HAS_TEXT

router = APIRouter(tags=["consent"])
ConsentPrincipal = Annotated[Principal, Depends(require_scope("consent"))]
ReviewPrincipal = Annotated[Principal, Depends(require_scope("review"))]
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))

TOKEN_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "wrong capture or liveness token"},
    404: {"description": "no such consent request"},
    409: {"description": "the request is no longer open (used, decided or expired)"},
}


def _owner(p: Principal) -> str:
    return f"{p.kind}:{p.id}"


def _is_admin(p: Principal) -> bool:
    return "admin" in p.scopes


class CreatedConsent(TypedDict):
    request_id: str
    capture_token: str
    capture_url: str
    capture_expires_at: str
    sources: list[dict[str, str]]


class CaptureStart(TypedDict):
    liveness_session_id: str
    liveness_token: str
    sentence: str


class ReceivedView(TypedDict):
    status: str
    reference: str
    pin: str


class CredentialBody(BaseModel):
    credential: str = Field(max_length=8192, description="a dsc1... consent credential")


class ReviewBody(BaseModel):
    approve: bool


class RevokeBody(BaseModel):
    reason: str = Field(default="", max_length=500)


class WithdrawBody(BaseModel):
    pin: str = Field(max_length=32, description="the PIN shown when the consent video was received")
    reason: str = Field(default="", max_length=500)


@router.post("/v1/consents", status_code=201, responses={413: {}, 415: {}, 422: {}})
async def create_consent(
    settings: SettingsDep,
    svc: ConsentDep,
    db: SessionDep,
    principal: ConsentPrincipal,
    provider: Annotated[
        str, Form(min_length=1, max_length=200, pattern=HAS_TEXT, description="who will make the digital human")
    ],
    purpose: Annotated[
        str, Form(min_length=1, max_length=2000, pattern=HAS_TEXT, description="what it will be used for")
    ],
    valid_days: Annotated[int, Form(ge=1, le=730, description="how long the consent is valid")] = 365,
    sources: Annotated[list[UploadFile] | None, File(description="source videos, photos, recordings")] = None,
    source_sha256: Annotated[
        list[str] | None, Form(description="SHA-256 of source media uploaded before (to any request)")
    ] = None,
) -> CreatedConsent:
    """Open a consent request for the source media the provider will train on. Their face and voice templates
    are computed now: a source set without a face or without speech is refused (422)."""
    files: list[SourceFile] = []
    for up in sources or []:
        path, media = await save_upload(up, settings, sources_dir(settings.home))
        media.close()
        if media.info.kind not in (MediaKind.VIDEO, MediaKind.IMAGE, MediaKind.AUDIO):
            raise MediaError("a source must be a video, a photo or a recording")
        files.append(SourceFile(path, media.info.sha256 or "", up.filename or path.name, media.info.kind.value))
    files += [find_stored(settings.home, sha) for sha in source_sha256 or [] if sha]
    rec, token = await run_in_threadpool(
        svc.create_request, db, provider, purpose, valid_days, files, _owner(principal)
    )
    return CreatedConsent(
        request_id=rec.id,
        capture_token=token,
        capture_url=f"/consent/capture/{rec.id}#token={token}",
        capture_expires_at=rec.capture_expires_at.isoformat(),
        sources=[{"sha256": f.sha256, "name": f.name, "kind": f.kind} for f in files],
    )


@router.get("/v1/consents/{request_id}", responses={404: {}})
def get_consent(request_id: str, svc: ConsentDep, db: SessionDep, principal: ConsentPrincipal) -> dict[str, Any]:
    """Status (open, processing, issued, review, failed, expired), reasons, each check's evidence and the
    credential id once issued. Another provider's request reads as absent."""
    rec = svc.get(db, request_id)
    if rec.created_by != _owner(principal) and not _is_admin(principal):
        raise ConsentNotFound(f"no consent request {request_id}")
    cred = svc.credential_of(db, rec.id)
    return svc.public_request(rec, cred.id if cred else None)


@router.post("/v1/consents/{request_id}/capture", responses=TOKEN_ERRORS)
def start_capture(
    request_id: str,
    svc: ConsentDep,
    db: SessionDep,
    x_consent_token: Annotated[str | None, Header()] = None,
) -> CaptureStart:
    """For the capture page: opens the consent's liveness session (the source face as its reference) and gives
    the sentence to read aloud; the liveness steps then come from `/v1/liveness/sessions/{id}/...`."""
    live_id, live_token, _script, sentence = svc.start_capture(db, request_id, x_consent_token)
    return CaptureStart(liveness_session_id=live_id, liveness_token=live_token, sentence=sentence)


@router.post("/v1/consents/{request_id}/video", responses={**TOKEN_ERRORS, 413: {}, 415: {}, 422: {}})
async def upload_consent_video(
    request_id: str,
    svc: ConsentDep,
    settings: SettingsDep,
    db: SessionDep,
    video: Annotated[UploadFile, File(description="the recording with sound (WebM or MP4)")],
    x_consent_token: Annotated[str | None, Header()] = None,
    x_liveness_token: Annotated[str | None, Header()] = None,
) -> ReceivedView:
    """Upload the consent recording once; every check runs during this call. The answer gives the person the
    reference and PIN that withdraw the consent, never the outcome."""
    path, sha256 = await save_video_upload(video, settings)
    _out, received = await run_in_threadpool(
        svc.submit, db, request_id, x_consent_token, x_liveness_token, path, sha256
    )
    db.commit()
    return ReceivedView(status="received", reference=received.request_id, pin=received.pin)


@router.post("/v1/consents/{request_id}/review", responses={404: {}, 409: {}, 422: {}})
def review_consent(
    request_id: str, body: ReviewBody, svc: ConsentDep, db: SessionDep, principal: ReviewPrincipal
) -> dict[str, Any]:
    """A reviewer's decision on a request in review: approve issues the credential, reject fails the request."""
    issued = svc.resolve_review(db, request_id, body.approve, principal.name)
    return svc.public_request(svc.get(db, request_id), issued.credential.id if issued else None)


@router.get("/v1/consents/credentials/mine")
def list_credentials(svc: ConsentDep, db: SessionDep, principal: ConsentPrincipal) -> list[dict[str, Any]]:
    """The caller's credentials, newest first (all of them for an administrator)."""
    owner = None if _is_admin(principal) else _owner(principal)
    return [svc.public_credential(c) for c in svc.list_credentials(db, owner)]


@router.post("/v1/consents/credentials/{credential_id}/revoke", responses={404: {}})
def revoke_credential(
    credential_id: str, body: RevokeBody, svc: ConsentDep, db: SessionDep, principal: ConsentPrincipal
) -> dict[str, Any]:
    """The provider revokes one of its credentials; verifiers read it revoked from the next check on."""
    cred = svc.revoke_by_provider(db, credential_id, _owner(principal), _is_admin(principal), body.reason)
    db.commit()
    return svc.public_credential(cred)


@router.get("/v1/consents/credentials/{credential_id}/status", responses={404: {}})
def credential_status(credential_id: str, svc: ConsentDep, db: SessionDep) -> dict[str, Any]:
    """Public, for any verifier: valid, expired or revoked, read from the store on every call (no cache)."""
    view = svc.public_credential(svc.credential(db, credential_id))
    return {k: view[k] for k in ("credential_id", "state", "expires_at", "revoked_at")}


@router.post("/v1/consents/credentials/verify")
def verify_credential(body: CredentialBody, svc: ConsentDep) -> dict[str, Any]:
    """Public: the state of a credential (valid, expired, revoked, unknown, signature_invalid, malformed)."""
    return svc.check_token(body.credential).to_dict()


@router.post("/v1/consents/{request_id}/withdraw", responses={403: {"description": "unknown reference or wrong PIN"}})
def withdraw(request_id: str, body: WithdrawBody, svc: ConsentDep, db: SessionDep) -> dict[str, str]:
    """Public, for the person: the reference (the request id) and PIN shown after the recording withdraw the
    consent; an issued credential is revoked, a request in review never issues."""
    try:
        rec = svc.withdraw(db, request_id, body.pin, body.reason)
    except WrongPin:
        db.commit()  # the failed attempt counts: the session would otherwise roll it back with the error
        raise
    db.commit()
    return {"reference": rec.id, "status": "withdrawn"}


@router.get("/consent/capture/{request_id}", response_class=HTMLResponse, include_in_schema=False)
def capture_page(request_id: str, request: Request) -> Response:
    resp = templates.TemplateResponse(request, "consent_capture.html", {"request_id": request_id})
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.get("/consent/withdraw", response_class=HTMLResponse, include_in_schema=False)
def withdraw_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "consent_withdraw.html", {})
