"""Label endpoints: label a file (producer or platform mode) and verify an upload's labels."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from deepshield.accounts.service import Principal
from deepshield.api.deps import SettingsDep, require_scope
from deepshield.api.uploads import save_upload

router = APIRouter(prefix="/v1/labels", tags=["labels"])
LabelPrincipal = Annotated[Principal, Depends(require_scope("label"))]

_EXT = {
    "jpeg": ".jpg",
    "png": ".png",
    "webp": ".webp",
    "mp4": ".mp4",
    "mov": ".mp4",
    "wav": ".wav",
    "mp3": ".mp3",
    "webm": ".mp4",
    "mkv": ".mp4",
    "avi": ".mp4",
    "m4a": ".m4a",
}


@router.post("", response_class=FileResponse, responses={200: {"description": "the labelled file"}, 415: {}, 422: {}})
async def create_label(
    settings: SettingsDep,
    principal: LabelPrincipal,
    file: Annotated[UploadFile, File(description="image, video or audio to label")],
    producer: Annotated[str, Form()] = "deepshield",
    produce_id: Annotated[str | None, Form()] = None,
    label: Annotated[str, Form()] = "1",
    text: Annotated[str, Form()] = "AI生成",
    position: Annotated[str, Form()] = "bottom-right",
    visible: Annotated[bool, Form()] = True,
    watermark: Annotated[bool, Form()] = True,
    c2pa: Annotated[bool, Form()] = True,
    propagator: Annotated[str | None, Form(description="platform mode: ContentPropagator")] = None,
    propagate_id: Annotated[str | None, Form()] = None,
) -> FileResponse:
    """Returns the labelled file; the `X-Deepshield-Label` header holds the result (base64 JSON)."""
    from deepshield.labels.service import LabelOptions, label_file

    path, media = await save_upload(file, settings)
    media.close()
    out_dir = settings.home / "labels" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / f"{uuid.uuid4().hex}{_EXT.get(media.info.format, '.bin')}"
    opts = LabelOptions(
        producer=producer,
        produce_id=produce_id,
        label=label,
        text=text,
        position=position,
        visible=visible,
        watermark=watermark,
        c2pa=c2pa,
        propagator=propagator,
        propagate_id=propagate_id,
    )
    try:
        res = await run_in_threadpool(label_file, path, dst, opts, settings.home)
    finally:
        path.unlink(missing_ok=True)
    header = base64.b64encode(json.dumps(res.to_dict() | {"path": None}).encode()).decode()
    return FileResponse(
        dst,
        filename=f"labelled{dst.suffix}",
        headers={"X-Deepshield-Label": header},
        background=BackgroundTask(lambda: dst.unlink(missing_ok=True)),
    )


@router.post("/verify")
async def verify_label(
    settings: SettingsDep,
    principal: LabelPrincipal,
    file: Annotated[UploadFile, File(description="file to check for labels")],
    watermark: Annotated[bool, Form()] = True,
) -> dict[str, Any]:
    """Every label found (AIGC metadata, C2PA manifest, watermark), their agreement and the display decision."""
    from deepshield.labels.service import verify_file

    path, media = await save_upload(file, settings)
    media.close()
    try:
        rep = await run_in_threadpool(verify_file, path, watermark, settings.home)
    finally:
        path.unlink(missing_ok=True)
    d = rep.to_dict()
    d["path"] = file.filename
    return d
