"""`open_media`: the single entry point that validates a file and returns the right decoder."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import BinaryIO

from deepshield.errors import (
    CorruptMedia,
    DeepshieldError,
    MediaError,
    MediaNotFound,
    MediaTooLarge,
    UnsupportedMediaType,
)
from deepshield.filehash import sha256_file
from deepshield.media.image import ImageMedia
from deepshield.media.limits import MediaLimits
from deepshield.media.sniff import sniff_bytes
from deepshield.media.types import AudioTrack, Media, MediaInfo, MediaKind, RGBImage
from deepshield.media.video import AudioMedia, VideoMedia

_sha256 = sha256_file


def open_media(path: str | os.PathLike[str], limits: MediaLimits | None = None, sha256: str | None = None) -> Media:
    """Validate and open a media file. Raises a `MediaError` subclass with a one-line reason on bad input.

    `sha256` lets a caller that already hashed the bytes (an upload, hashed while streaming) skip a re-read."""
    limits = limits or MediaLimits()
    p = Path(path)
    if not p.exists():
        raise MediaNotFound(f"no such file: {p}")
    if not p.is_file():
        raise UnsupportedMediaType(f"not a regular file: {p}")
    size = p.stat().st_size
    if size == 0:
        raise UnsupportedMediaType(f"{p.name}: file is empty")
    if size > limits.max_bytes:
        raise MediaTooLarge(f"{p.name}: {size / 1e6:.1f} MB, over the limit of {limits.max_bytes / 1e6:.0f} MB")
    with open(p, "rb") as f:
        head = f.read(64)
    sniffed = sniff_bytes(head)
    if sniffed is None:
        raise UnsupportedMediaType(
            f"{p.name}: not a supported image, video or audio file (content does not match any known format)"
        )
    info = MediaInfo(
        path=str(p),
        kind=sniffed.kind,
        format=sniffed.format,
        mime=sniffed.mime,
        size_bytes=size,
        sha256=sha256 or _sha256(p),
    )
    if sniffed.kind is MediaKind.IMAGE:
        return ImageMedia(info, limits)
    if sniffed.kind is MediaKind.VIDEO:
        return VideoMedia(info, limits)
    return AudioMedia(info, limits)


def open_upload(
    stream: BinaryIO,
    dest_dir: Path,
    limits: MediaLimits | None = None,
    chunk: int = 1 << 20,
    name: str | None = None,
) -> tuple[Path, Media]:
    """Stream an upload to disk under `dest_dir` (never held whole in memory), stopping at the size limit.

    Each upload gets a file of its own (`<sha256>-<random>.<ext>`): two requests with the same bytes must not
    share one, or the first to finish deletes it under the other (which was then screened as "no such file").
    An error names the file as `name` (what the user sent), never the server's temporary path."""
    limits = limits or MediaLimits()
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix="upload-", suffix=".part")
    written = 0
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                block = stream.read(chunk)
                if not block:
                    break
                written += len(block)
                if written > limits.max_bytes:
                    raise MediaTooLarge(f"upload is over the limit of {limits.max_bytes / 1e6:.0f} MB")
                digest.update(block)
                out.write(block)
        media = open_media(tmp, limits, sha256=digest.hexdigest())
        final = dest_dir / f"{media.info.sha256}-{secrets.token_hex(6)}.{media.info.format}"
        os.replace(tmp, final)
        media.info.path = str(final)
        return final, media
    except MediaError as e:
        Path(tmp).unlink(missing_ok=True)
        rename_in_error(e, Path(tmp), name or "the upload")
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rename_in_error(e: DeepshieldError, path: Path, name: str) -> None:
    """Say `name` where the message says the server's path or file name (a temporary `upload-*.part`)."""
    e.message = e.message.replace(str(path), name).replace(path.name, name)
    e.args = (e.message,)


def representative_frame(path: str | os.PathLike[str], limits: MediaLimits | None = None) -> RGBImage:
    """RGB of an image's one frame or a video's middle frame (a donor face, an ID photo, a thumbnail)."""
    from deepshield.media.types import FrameSampling

    media = open_media(path, limits)
    try:
        for frame in media.frames(FrameSampling.evenly(1)):
            return frame.rgb
    finally:
        media.close()
    raise CorruptMedia(f"{Path(path).name}: no decodable frame")


def read_audio(path: str | os.PathLike[str], limits: MediaLimits | None = None) -> AudioTrack | None:
    """The whole audio track of a file (validated as `open_media` does), or None when it has none."""
    media = open_media(path, limits)
    try:
        return media.audio()
    finally:
        media.close()
