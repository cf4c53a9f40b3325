"""Source media: the recordings a provider will build a digital human from, uploaded once and then referable
by SHA-256. Their face track embeddings and voice embedding are what a consent video is matched against."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepshield.consent.audio import NoAudio, load_speech
from deepshield.consent.checks import SourceTemplates
from deepshield.consent.face import NoFaceTrack, face_template
from deepshield.consent.voice import TooLittleSpeech, get_voice_embedder
from deepshield.errors import DeepshieldError, MediaError
from deepshield.faces import FaceAnalyzer
from deepshield.liveness.embedding import get_embedder
from deepshield.media import MediaKind, open_media, representative_frame

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class UnknownSource(DeepshieldError):
    code = "unknown_source"
    http_status = 422


class UnusableSource(MediaError):
    code = "unusable_source"


@dataclass(frozen=True)
class SourceFile:
    path: Path
    sha256: str
    name: str
    kind: str  # video, image, audio


def sources_dir(home: Path) -> Path:
    return home / "consent" / "sources"


def describe(path: Path, name: str | None = None) -> SourceFile:
    media = open_media(path)
    try:
        return SourceFile(path, media.info.sha256 or "", name or path.name, media.info.kind.value)
    finally:
        media.close()


def find_stored(home: Path, sha256: str) -> SourceFile:
    """A source uploaded before (to any request), by its SHA-256."""
    sha = sha256.strip().lower()
    if not _SHA256.match(sha):
        raise UnknownSource(f"{sha256!r} is not a SHA-256 (64 hex digits)")
    for p in sorted(sources_dir(home).glob(f"{sha}-*")):
        return describe(p, p.name)
    raise UnknownSource(f"no source media with SHA-256 {sha} was uploaded here; upload the file itself")


def source_templates(files: list[SourceFile], analyzer: FaceAnalyzer) -> SourceTemplates:
    """Face vectors of every source's main face track (or photo) and the mean voice embedding of every source
    with speech. A source set without a face or without a voice cannot be consented to: `UnusableSource`."""
    if not files:
        raise UnusableSource("name at least one source media file (uploaded or by SHA-256)")
    faces: list[np.ndarray] = []
    voices: list[np.ndarray] = []
    emb = get_embedder(required=True)
    venc = get_voice_embedder(required=True)
    assert emb is not None and venc is not None
    for f in files:
        if f.kind == MediaKind.VIDEO.value:
            with contextlib.suppress(NoFaceTrack):
                faces.append(face_template(f.path, analyzer).vectors)
        elif f.kind == MediaKind.IMAGE.value:
            rgb = representative_frame(f.path)
            found = analyzer.analyze(rgb)
            if found:
                big = max(found, key=lambda x: x.width)
                faces.append(emb.embed(rgb, big)[None, :])
        if f.kind in (MediaKind.VIDEO.value, MediaKind.AUDIO.value):
            with contextlib.suppress(NoAudio, TooLittleSpeech):
                voices.append(venc.embed(load_speech(f.path)).vector)
    if not faces:
        raise UnusableSource("no face found in the source media: the consent binds a face; send a video or photo")
    if not voices:
        raise UnusableSource("no speech found in the source media: the consent binds a voice; send a recording")
    v = np.mean(np.stack(voices), axis=0)
    v = (v / max(1e-12, float(np.linalg.norm(v)))).astype(np.float32)
    return SourceTemplates(np.concatenate(faces).astype(np.float32), v, tuple(f.sha256 for f in files))
