"""Uploads go through the media module's `open_upload`: streamed to disk, size-limited, sniffed and validated."""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from deepshield.config import Settings
from deepshield.errors import MediaError
from deepshield.media import Media, MediaKind, MediaLimits, open_upload


async def save_upload(file: UploadFile, settings: Settings, dest: Path | None = None) -> tuple[Path, Media]:
    """`dest`: a folder of the domain's own (consent source media are kept and referred to by SHA-256)."""
    limits = MediaLimits(max_bytes=settings.max_upload_bytes)
    return await run_in_threadpool(
        open_upload, file.file, dest or settings.uploads_dir, limits, name=file.filename or "the upload"
    )


async def save_video_upload(file: UploadFile, settings: Settings) -> tuple[Path, str]:
    """A recording (liveness, consent): saved as `save_upload` saves it, refused unless it is a video; the path and
    its SHA-256."""
    path, media = await save_upload(file, settings)
    media.close()
    if media.info.kind != MediaKind.VIDEO:
        raise MediaError("the upload must be a video")
    return path, media.info.sha256 or ""
