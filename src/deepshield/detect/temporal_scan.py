"""The temporal detector inside a scan: a few extra windows of consecutive frames, each face followed through
each window, its clips scored, and the clips given to the scan's tracks.

The frame detector's frames are spread over the whole video, too far apart for a temporal detector, so a scan
decodes `windows` runs of K consecutive frames more (`WindowSampling`). Within a window a face is followed by box
overlap; a face seen in all K frames is one clip (`stable_crops`). A clip belongs to the scan track whose face
nearest in time overlaps it most (its own track, -1, when none does). A track's temporal score is the mean of its
clips' probabilities; the video's is the highest track score, as a swap of one person must not be averaged away.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from deepshield.detect.temporal import TemporalDetector, WindowSampling, stable_crops
from deepshield.faces.analyzer import FaceAnalyzer
from deepshield.faces.geometry import iou
from deepshield.faces.types import Face, FaceTrack
from deepshield.media import Media

#: A face in the next frame continues a face of this one when their boxes overlap this much.
FOLLOW_IOU = 0.3
#: Faces smaller than this (longer box side, pixels) carry too little motion detail to score.
MIN_FACE_PX = 40.0


@dataclass
class TemporalOutcome:
    track_scores: dict[int, float] = field(default_factory=dict)
    clips: int = 0
    decode_s: float = 0.0
    faces_s: float = 0.0
    detector_s: float = 0.0

    @property
    def video_score(self) -> float | None:
        return max(self.track_scores.values()) if self.track_scores else None


def _runs(frames: list[tuple[np.ndarray, list[Face]]], length: int) -> list[tuple[list[np.ndarray], list[Face]]]:
    """(frames, faces) of each face present with a mesh in all `length` frames of one window."""
    out = []
    for start_face in frames[0][1]:
        if start_face.landmarks is None or max(start_face.width, start_face.height) < MIN_FACE_PX:
            continue
        chain = [start_face]
        for _, faces in frames[1:]:
            nxt = max(
                (f for f in faces if f.landmarks is not None), key=lambda f: iou(f.box, chain[-1].box), default=None
            )
            if nxt is None or iou(nxt.box, chain[-1].box) < FOLLOW_IOU:
                break
            chain.append(nxt)
        if len(chain) == length:
            out.append(([rgb for rgb, _ in frames], chain))
    return out


def _track_of(face: Face, tracks: list[FaceTrack]) -> int:
    """The scan track whose face nearest in time overlaps `face` most; -1 when none overlaps."""
    best, best_iou = -1, FOLLOW_IOU
    for t in tracks:
        near = min(t.faces, key=lambda f: abs(f.time_s - face.time_s))
        o = iou(near.box, face.box)
        if o >= best_iou:
            best, best_iou = t.track_id, o
    if best < 0 and len(tracks) == 1:
        return tracks[0].track_id  # one person: the face moved between the sampled frame and the window
    return best


def score_tracks(
    media: Media, analyzer: FaceAnalyzer, detector: TemporalDetector, tracks: list[FaceTrack], windows: int
) -> TemporalOutcome:
    """Temporal scores of a video's tracks from `windows` extra runs of the detector's K consecutive frames."""
    out = TemporalOutcome()
    k = detector.frames
    fps = media.info.fps or 25.0
    # One frame more per window: the first frame after a seek can land one frame off, which breaks the run.
    sampling = WindowSampling(count=None, windows=windows, length=k + 1, frame_rate=fps)
    groups: list[list[tuple[np.ndarray, list[Face]]]] = []
    last_index = -2
    t = time.perf_counter()
    for frame in media.frames(sampling):
        out.decode_s += time.perf_counter() - t
        t1 = time.perf_counter()
        faces = analyzer.analyze(frame.rgb, frame_index=frame.index, time_s=frame.time_s)
        out.faces_s += time.perf_counter() - t1
        if frame.index != last_index + 1 or not groups:
            groups.append([])
        groups[-1].append((frame.rgb, faces))
        last_index = frame.index
        t = time.perf_counter()
    clips: list[np.ndarray] = []
    owners: list[int] = []
    for g in groups:
        for s in range(len(g) - k, -1, -k):  # runs of K consecutive frames, from the window's end
            for rgbs, chain in _runs(g[s : s + k], k):
                lms = [f.landmarks for f in chain if f.landmarks is not None]
                crops, _ = stable_crops(rgbs, lms)
                clips.append(crops)
                owners.append(_track_of(chain[k // 2], tracks))
    if not clips:
        return out
    t2 = time.perf_counter()
    probs = detector.clip_scores(clips)
    out.detector_s = time.perf_counter() - t2
    out.clips = len(clips)
    for tid in sorted(set(owners)):
        out.track_scores[tid] = float(np.mean([p for p, o in zip(probs, owners, strict=True) if o == tid]))
    return out
