"""Linking per-frame faces into tracks, so a video of two people yields two tracks."""

from __future__ import annotations

import numpy as np

from deepshield.faces.types import Face, FaceTrack


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix0, iy0, ix1, iy1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def _affinity(track_face: Face, face: Face) -> float:
    """1 for the same place and size, 0 for unrelated; tolerant of motion between sparse samples."""
    iou = _iou(track_face.box, face.box)
    (ax, ay), (bx, by) = track_face.center, face.center
    scale = max(track_face.width, track_face.height, face.width, face.height, 1.0)
    dist = float(np.hypot(ax - bx, ay - by)) / scale
    size_ratio = min(track_face.width, face.width) / max(track_face.width, face.width, 1e-6)
    if dist > 1.5 or size_ratio < 0.4:
        return 0.0
    return max(iou, (1.0 - dist / 1.5) * size_ratio * 0.8)


def link_tracks(
    frames_faces: list[list[Face]], max_gap: int = 3, min_affinity: float = 0.2, min_fraction: float = 0.15
) -> list[FaceTrack]:
    """Greedy frame-to-frame association; tracks seen in fewer than `min_fraction` of frames are dropped
    (single-frame false detections). Sets `track_id` on every kept face."""
    tracks: list[list[Face]] = []
    last_seen: list[int] = []
    for fi, faces in enumerate(frames_faces):
        pairs = []
        for ti, tr in enumerate(tracks):
            if fi - last_seen[ti] > max_gap:
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
    n = max(1, len(frames_faces))
    min_len = 1 if n < 4 else max(2, int(np.ceil(min_fraction * n)))
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
