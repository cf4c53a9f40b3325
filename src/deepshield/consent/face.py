"""The face side of consent: dlib embeddings (the ID-photo match's embedder) of the main face track of a video,
compared as the median of all frame-to-frame distances, so the thresholds of `calibrate-match` (photo pairs)
apply unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from deepshield.errors import MediaError
from deepshield.faces import FaceAnalyzer
from deepshield.faces.tracking import link_tracks
from deepshield.liveness.embedding import get_embedder
from deepshield.media import FrameSampling, open_media

#: Frames sampled evenly over a video for its face template.
TEMPLATE_FRAMES = 12


class NoFaceTrack(MediaError):
    code = "no_face"


@dataclass(frozen=True)
class FaceTemplate:
    """Embeddings of the main face track (one per sampled frame it appears in) and when each was taken."""

    vectors: NDArray[np.float32]  # n x 128
    times: NDArray[np.float64]
    embedder: str

    def between(self, start_s: float, end_s: float) -> FaceTemplate:
        keep = (self.times >= start_s) & (self.times < end_s)
        return FaceTemplate(self.vectors[keep], self.times[keep], self.embedder)

    def digest_input(self) -> bytes:
        """The bytes a credential's face-template hash is taken over (float32, little-endian)."""
        return np.asarray(self.vectors, dtype="<f4").tobytes()


def face_template(path: Path, analyzer: FaceAnalyzer, frames: int = TEMPLATE_FRAMES) -> FaceTemplate:
    """The longest face track over `frames` evenly sampled frames; `NoFaceTrack` when no face is seen."""
    emb = get_embedder(required=True)
    assert emb is not None
    media = open_media(path)
    try:
        sampled = [(f.time_s, f.rgb) for f in media.frames(FrameSampling.evenly(frames))]
    finally:
        media.close()
    per_frame = [analyzer.analyze(rgb, frame_index=i, time_s=t) for i, (t, rgb) in enumerate(sampled)]
    tracks = link_tracks(per_frame)
    if not tracks:
        raise NoFaceTrack(f"{Path(path).name}: no face found in {len(sampled)} sampled frames")
    main = max(tracks, key=lambda tr: (len(tr.faces), float(np.mean([f.width for f in tr.faces]))))
    vecs, times = [], []
    for face in main.faces:
        vecs.append(emb.embed(sampled[face.frame_index][1], face))
        times.append(face.time_s)
    return FaceTemplate(np.stack(vecs).astype(np.float32), np.asarray(times, dtype=np.float64), emb.info.name)


def face_distance(a: FaceTemplate, b: FaceTemplate) -> float:
    """Median euclidean distance over every pair of frames; inf when either side has no face."""
    if len(a.vectors) == 0 or len(b.vectors) == 0:
        return float("inf")
    x, y = a.vectors.astype(np.float64), b.vectors.astype(np.float64)
    d = np.sqrt(np.maximum((x**2).sum(1)[:, None] + (y**2).sum(1)[None, :] - 2 * x @ y.T, 0.0))
    return float(np.median(d))
