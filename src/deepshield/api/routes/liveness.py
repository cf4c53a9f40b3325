"""Liveness API (scope `scan`: the relying party's backend) and the capture page (the person being checked).

The backend creates a session with the ID photo and gets a script, an upload token and a capture URL; the
capture page (holding only the token, in the URL fragment) reads its script and uploads the video once; the
backend reads the decision. Nothing the page can reach carries a score or a decision.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from deepshield.accounts.service import Principal
from deepshield.api.deps import LivenessDep, SessionDep, SettingsDep, require_scope
from deepshield.api.uploads import save_upload
from deepshield.errors import DeepshieldError, MediaError
from deepshield.liveness.script import ChallengeScript
from deepshield.media import MediaKind

router = APIRouter(tags=["liveness"])
ScanPrincipal = Annotated[Principal, Depends(require_scope("scan"))]
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


def _client_script(script: ChallengeScript) -> dict[str, Any]:
    d = script.to_dict()
    return {"duration_s": d["duration_s"], "steps": d["steps"], "flashes": d["flashes"]}


@router.post("/v1/liveness/sessions", status_code=201, responses={413: {}, 415: {}, 422: {}, 429: {}})
async def create_session(
    settings: SettingsDep,
    svc: LivenessDep,
    db: SessionDep,
    principal: ScanPrincipal,
    id_photo: Annotated[UploadFile, File(description="photo of the ID document's portrait")],
    subject: Annotated[str | None, Form(max_length=128, description="your reference for the person")] = None,
    device: Annotated[str | None, Form(max_length=128, description="your reference for the device")] = None,
) -> dict[str, Any]:
    """Open a session: a fresh random script, valid for at most 3 minutes, used once. Refused (429) while the
    subject or device is locked out after repeated failures."""
    svc.check_lockout(db, subject, device)
    path, media = await save_upload(id_photo, settings)
    media.close()
    rec, token, script = await run_in_threadpool(svc.create_session, db, path, subject, device, principal.name)
    return {
        "session_id": rec.id,
        "expires_at": rec.expires_at.isoformat(),
        "script": _client_script(script),
        "upload_token": token,
        "capture_url": f"/liveness/capture/{rec.id}#token={token}",
    }


@router.get("/v1/liveness/sessions/{session_id}/script")
def get_script(
    session_id: str, svc: LivenessDep, db: SessionDep, x_liveness_token: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    """For the capture page: the script to perform (token auth, no API key)."""
    rec = svc.get(db, session_id)
    svc.check_token(rec, x_liveness_token)
    return {
        "session_id": rec.id,
        "status": rec.status,
        "expires_at": rec.expires_at.isoformat(),
        "script": _client_script(ChallengeScript.from_dict(json.loads(rec.script_json))),
    }


@router.post("/v1/liveness/sessions/{session_id}/video", responses={409: {}, 410: {}, 413: {}, 415: {}, 422: {}})
async def upload_video(
    session_id: str,
    svc: LivenessDep,
    settings: SettingsDep,
    db: SessionDep,
    video: Annotated[UploadFile, File(description="the recording (WebM or MP4)")],
    x_liveness_token: Annotated[str | None, Header()] = None,
    token: Annotated[str | None, Form()] = None,
) -> dict[str, str]:
    """Upload the recording once. The answer says only that it was received: the decision goes to the backend."""
    rec = svc.claim_for_upload(db, session_id, x_liveness_token or token)
    db.commit()  # the claim is visible to a concurrent second upload at once
    try:
        path, media = await save_upload(video, settings)
        media.close()
        if media.info.kind != MediaKind.VIDEO:
            raise MediaError("the upload must be a video")
        await run_in_threadpool(svc.verify, db, rec, path, media.info.sha256)
    except DeepshieldError:
        # A file that is not a readable video does not use up the session (until it expires).
        db.rollback()
        svc.release_claim(db, session_id)
        db.commit()
        raise
    return {"session_id": rec.id, "status": "received"}


@router.get("/v1/liveness/sessions/{session_id}")
def get_session(
    session_id: str,
    svc: LivenessDep,
    db: SessionDep,
    principal: ScanPrincipal,
    detail: Annotated[bool, Query(description="include signal scores and evidence (audit, review)")] = False,
) -> dict[str, Any]:
    """Decision (pass / fail / review) with reasons, for the relying party's backend only."""
    return svc.public_view(svc.get(db, session_id), detail=detail)


@router.get("/liveness/capture/{session_id}", response_class=HTMLResponse, include_in_schema=False)
def capture_page(session_id: str, request: Request) -> Response:
    resp = templates.TemplateResponse(request, "liveness_capture.html", {"session_id": session_id})
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp
