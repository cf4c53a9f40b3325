"""Liveness API (scope `scan`: the relying party's backend) and the capture page (the person being checked).

The backend creates a session with the ID photo and gets an upload token and a capture URL, never the script;
the capture page (holding only the token, in the URL fragment) starts the session, learns each step only when
it is due, and uploads the video once; the decision is made during that upload, and the backend reads it, and
the whole script, with its key. Nothing the page can reach carries a score, a decision or a future step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from typing_extensions import TypedDict

from deepshield.accounts.service import Principal
from deepshield.api.deps import LivenessDep, SessionDep, SettingsDep, require_scope
from deepshield.api.uploads import save_upload, save_video_upload
from deepshield.errors import DeepshieldError
from deepshield.liveness.reveal import CaptureState, StartView, StepReveal

router = APIRouter(tags=["liveness"])
ScanPrincipal = Annotated[Principal, Depends(require_scope("scan"))]
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


class CreatedSession(TypedDict):
    session_id: str
    expires_at: str
    upload_token: str
    capture_url: str


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
TOKEN_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "wrong upload token"},
    409: {"description": "already started, or the video was already uploaded"},
    410: {"description": "expired, or replaced by a newer session of the same subject or device"},
}


@router.post(
    "/v1/liveness/sessions",
    status_code=201,
    responses={
        413: {},
        415: {},
        422: {},
        429: {"description": "locked out, or too many sessions opened (rate limit)", "headers": RETRY_AFTER},
    },
)
async def create_session(
    settings: SettingsDep,
    svc: LivenessDep,
    db: SessionDep,
    principal: ScanPrincipal,
    id_photo: Annotated[UploadFile, File(description="photo of the ID document's portrait")],
    subject: Annotated[str | None, Form(max_length=128, description="your reference for the person")] = None,
    device: Annotated[str | None, Form(max_length=128, description="your reference for the device")] = None,
) -> CreatedSession:
    """Open a session: a fresh random script, kept on the server, valid for at most 3 minutes, used once. The
    answer holds no step: hand `capture_url` to the person. Refused (429, `Retry-After`) while the subject or
    device is locked out after repeated failures (abandoned and expired sessions count), or when more than
    `DEEPSHIELD_LIVENESS_MAX_OPENS` sessions were opened for the subject or device within
    `DEEPSHIELD_LIVENESS_OPEN_WINDOW_S`."""
    svc.admit(db, subject, device)
    path, media = await save_upload(id_photo, settings)
    media.close()
    rec, token, _ = await run_in_threadpool(svc.create_session, db, path, subject, device, principal.name)
    return CreatedSession(
        session_id=rec.id,
        expires_at=rec.expires_at.isoformat(),
        upload_token=token,
        capture_url=f"/liveness/capture/{rec.id}#token={token}",
    )


@router.get("/v1/liveness/sessions/{session_id}/capture", responses={403: TOKEN_ERRORS[403]})
def capture_state(
    session_id: str, svc: LivenessDep, db: SessionDep, x_liveness_token: Annotated[str | None, Header()] = None
) -> CaptureState:
    """For the capture page (token auth, no API key): whether the session can still be started."""
    return svc.capture_state(db, session_id, x_liveness_token)


@router.post("/v1/liveness/sessions/{session_id}/start", responses=TOKEN_ERRORS)
def start_session(
    session_id: str, svc: LivenessDep, db: SessionDep, x_liveness_token: Annotated[str | None, Header()] = None
) -> StartView:
    """For the capture page, as it starts recording (once): the first step, the colours to flash during it, and
    where and when to fetch the next step. Times are seconds from this call, on the server's clock."""
    return svc.start(db, session_id, x_liveness_token)


@router.get(
    "/v1/liveness/sessions/{session_id}/steps/{index}",
    responses={
        **TOKEN_ERRORS,
        403: {"description": "wrong upload token or step nonce"},
        409: {"description": "not started yet, or the video was already uploaded"},
        425: {"description": "the step is not due yet: nothing of it is revealed", "headers": RETRY_AFTER},
    },
)
def get_step(
    session_id: str,
    index: Annotated[int, PathParam(ge=0, le=63, description="the step's place in the script (scripts are short)")],
    svc: LivenessDep,
    db: SessionDep,
    nonce: Annotated[str, Query(max_length=64, description="the nonce the previous step's answer gave")],
    x_liveness_token: Annotated[str | None, Header()] = None,
) -> StepReveal:
    """For the capture page: step `index`, no earlier than its start (less 0.5 s) after `start`, and the next
    step's nonce and due time. Asked early, it answers 425 with `Retry-After` and nothing of the step."""
    return svc.step(db, session_id, x_liveness_token, index, nonce)


@router.post("/v1/liveness/sessions/{session_id}/video", responses={**TOKEN_ERRORS, 413: {}, 415: {}, 422: {}})
async def upload_video(
    session_id: str,
    svc: LivenessDep,
    settings: SettingsDep,
    db: SessionDep,
    video: Annotated[UploadFile, File(description="the recording (WebM or MP4)")],
    x_liveness_token: Annotated[str | None, Header()] = None,
    token: Annotated[str | None, Form()] = None,
) -> dict[str, str]:
    """Upload the recording once. The decision is made during this call (synchronously) and stored; the answer
    says only that it was received: the backend reads the decision with `GET /v1/liveness/sessions/{id}`."""
    rec = svc.claim_for_upload(db, session_id, x_liveness_token or token)
    db.commit()  # the claim is visible to a concurrent second upload at once
    try:
        path, sha256 = await save_video_upload(video, settings)
        await run_in_threadpool(svc.verify, db, rec, path, sha256)
    except DeepshieldError:
        # A file that is not a readable video does not use up the session (until it expires).
        db.rollback()
        svc.release_claim(db, session_id)
        db.commit()
        raise
    db.commit()  # stored before the answer: a backend told "received" finds the decision
    return {"session_id": rec.id, "status": "received"}


@router.get("/v1/liveness/sessions/{session_id}")
def get_session(
    session_id: str,
    svc: LivenessDep,
    db: SessionDep,
    principal: ScanPrincipal,
    detail: Annotated[bool, Query(description="include signal scores and evidence (audit, review)")] = False,
) -> dict[str, Any]:
    """Decision (pass / fail / review) with reasons, for the relying party's backend only. Decisions are made
    synchronously during the upload: once `status` is `decided`, the decision is final. `script` is the one
    script object (`nonce`, `duration_s`, `steps`, `flashes`; the input of `deepshield liveness verify
    --script`), given once the session is closed (decided, expired or abandoned), null before."""
    return svc.public_view(svc.get(db, session_id), detail=detail)


@router.get("/liveness/capture/{session_id}", response_class=HTMLResponse, include_in_schema=False)
def capture_page(session_id: str, request: Request) -> Response:
    resp = templates.TemplateResponse(request, "liveness_capture.html", {"session_id": session_id})
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp
