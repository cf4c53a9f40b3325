"""Content sniffing from magic bytes: a file's name says nothing about what it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deepshield.media.types import MediaKind


@dataclass(frozen=True)
class Sniffed:
    kind: MediaKind
    format: str  # short name: jpeg, png, webp, gif, bmp, tiff, mp4, mov, webm, mkv, avi, wav, mp3
    mime: str


_MP4_BRANDS_QT = {b"qt  "}


def sniff_bytes(head: bytes) -> Sniffed | None:
    """Recognise a supported container from its first bytes (64 are enough); None if unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed(MediaKind.IMAGE, "jpeg", "image/jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed(MediaKind.IMAGE, "png", "image/png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed(MediaKind.IMAGE, "gif", "image/gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed(MediaKind.IMAGE, "webp", "image/webp")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Sniffed(MediaKind.VIDEO, "avi", "video/x-msvideo")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed(MediaKind.AUDIO, "wav", "audio/wav")
    if head[:2] == b"BM" and len(head) >= 14:
        return Sniffed(MediaKind.IMAGE, "bmp", "image/bmp")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed(MediaKind.IMAGE, "tiff", "image/tiff")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _MP4_BRANDS_QT:
            return Sniffed(MediaKind.VIDEO, "mov", "video/quicktime")
        if brand in (b"M4A ", b"M4B "):
            return Sniffed(MediaKind.AUDIO, "m4a", "audio/mp4")
        return Sniffed(MediaKind.VIDEO, "mp4", "video/mp4")
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return Sniffed(MediaKind.VIDEO, "mov", "video/quicktime")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        if b"webm" in head[:64]:
            return Sniffed(MediaKind.VIDEO, "webm", "video/webm")
        return Sniffed(MediaKind.VIDEO, "mkv", "video/x-matroska")
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE6) in (0xE2, 0xE4, 0xE6)):
        return Sniffed(MediaKind.AUDIO, "mp3", "audio/mpeg")
    return None


def sniff_file(path: Path) -> Sniffed | None:
    with open(path, "rb") as f:
        return sniff_bytes(f.read(64))
