"""Linking per-frame faces into tracks, so a video of two people yields two tracks."""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from deepshield.faces.geometry import iou
from deepshield.faces.types import Face, FaceTrack
from deepshield.media.types import RGBImage


def frame_signature(rgb: RGBImage) -> NDArray[np.float32]:
    """A colour histogram of the whole frame, for telling shots apart (cheap: computed on a 64 px thumbnail)."""
    small = cv2.resize(rgb, (64, 36), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
    return cast(NDArray[np.float32], cv2.normalize(hist, hist).flatten())  # calcHist counts in float32


def shot_cuts(signatures: list[NDArray[np.float32]], threshold: float = 0.3) -> set[int]:
    """Indices of sampled frames that start a new shot: a face never continues a track across a cut."""
    cuts = set()
    for i in range(1, len(signatures)):
        d = cv2.compareHist(signatures[i - 1], signatures[i], cv2.HISTCMP_BHATTACHARYYA)
        if d > threshold:
            cuts.add(i)
    return cuts


def _affinity(track_face: Face, face: Face) -> float:
    """1 for the same place and size, 0 for unrelated; tolerant of motion between sparse samples."""
    overlap = iou(track_face.box, face.box)
    (ax, ay), (bx, by) = track_face.center, face.center
    scale = max(track_face.width, track_face.height, face.width, face.height, 1.0)
    dist = float(np.hypot(ax - bx, ay - by)) / scale
    size_ratio = min(track_face.width, face.width) / max(track_face.width, face.width, 1e-6)
    if dist > 1.5 or size_ratio < 0.4:
        return 0.0
    return max(overlap, (1.0 - dist / 1.5) * size_ratio * 0.8)


def link_tracks(
    frames_faces: list[list[Face]],
    cuts: set[int] | None = None,
    max_gap: int = 3,
    min_affinity: float = 0.2,
    min_fraction: float = 0.15,
) -> list[FaceTrack]:
    """Greedy frame-to-frame association within shots; tracks seen in fewer than `min_fraction` of the sampled
    frames (and in one frame only) are dropped as false detections. Sets `track_id` on every kept face."""
    cuts = cuts or set()
    tracks: list[list[Face]] = []
    last_seen: list[int] = []
    shot_of: list[int] = []
    shot = 0
    for fi, faces in enumerate(frames_faces):
        if fi in cuts:
            shot += 1
        pairs = []
        for ti, tr in enumerate(tracks):
            if fi - last_seen[ti] > max_gap or shot_of[ti] != shot:
                continue
            for di, f in enumerate(faces):
                a = _affinity(tr[-1], f)
                if a >= min_affinity:
                    pairs.append((a, ti, di))
        pairs.sort(reverse=True)
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            tracks[ti].append(faces[di])
            last_seen[ti] = fi
            used_t.add(ti)
            used_d.add(di)
        for di, f in enumerate(faces):
            if di not in used_d:
                tracks.append([f])
                last_seen.append(fi)
                shot_of.append(shot)
    n = max(1, len(frames_faces))
    # A short shot can hold a real person for a few samples only: keep any track seen twice or more.
    min_len = 1 if n < 4 else min(2, max(1, int(np.ceil(min_fraction * n))))
    kept = [t for t in tracks if len(t) >= min_len]
    kept.sort(key=lambda t: (t[0].frame_index, t[0].box[0]))
    out = []
    for tid, t in enumerate(kept):
        for f in t:
            f.track_id = tid
        out.append(FaceTrack(track_id=tid, faces=t))
    for faces in frames_faces:
        for f in faces:
            if f.track_id is None:
                f.extra["untracked"] = True
    return out
