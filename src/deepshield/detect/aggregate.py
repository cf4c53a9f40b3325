"""How the field turns per-face scores into frame, track and video scores (as in the SBI evaluation protocol):
max over faces within a frame, mean over frames for a track and for the video. Faces cut by the frame edge
count for a frame only when they are its largest face (ScoredFace.partial)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from deepshield.scan_result import FrameScore


@dataclass
class AggregateScores:
    video: float | None
    frames: list[FrameScore]  # frames with at least one face, with rounded scores (the video's mean is of these)
    tracks: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredFace:
    frame_index: int
    time_s: float
    track_id: int | None
    score: float
    #: Cut by the frame edge (Face.is_partial): its crop is partly mirrored padding. Unless it is its frame's
    #: largest face, it does not count for the frame (group photos put heads at the borders, and they read as
    #: fake); a track counts its whole faces when it has any.
    partial: bool = False
    size: float = 0.0  # the face box's longer side, pixels


def pick_frame_face(scores: Sequence[float], partial: Sequence[bool], sizes: Sequence[float]) -> int:
    """Index of the face that stands for its frame: the highest-scoring of the whole faces and the largest face.

    The largest face counts even when cut: a close-up with the chin or the forehead outside the frame is still
    the subject, and the subject is what a manipulation targets.
    """
    largest = max(range(len(sizes)), key=lambda k: sizes[k])
    pool = [k for k, p in enumerate(partial) if not p or k == largest]
    return max(pool, key=lambda k: scores[k])


def aggregate_scores(per_face: list[ScoredFace]) -> AggregateScores:
    """Max over the faces of a frame, mean over frames for the video and over a track's faces for the track."""
    if not per_face:
        return AggregateScores(video=None, frames=[])
    by_frame: dict[int, list[ScoredFace]] = {}
    by_track: dict[int, list[ScoredFace]] = {}
    for f in per_face:
        by_frame.setdefault(f.frame_index, []).append(f)
        if f.track_id is not None:
            by_track.setdefault(f.track_id, []).append(f)
    frames = []
    for fi, fs in sorted(by_frame.items()):
        best = fs[pick_frame_face([f.score for f in fs], [f.partial for f in fs], [f.size for f in fs])]
        frames.append(FrameScore(fi, round(best.time_s, 3), round(best.score, 4)))
    video = float(np.mean([f.score for f in frames]))
    tracks = {tid: float(np.mean([f.score for f in _whole_or_all(fs)])) for tid, fs in sorted(by_track.items())}
    return AggregateScores(video=video, frames=frames, tracks=tracks)


def _whole_or_all(faces: list[ScoredFace]) -> list[ScoredFace]:
    whole = [f for f in faces if not f.partial]
    return whole or faces
