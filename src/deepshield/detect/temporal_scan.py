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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from deepshield.detect.temporal import TemporalDetector, WindowSampling, stable_crops
from deepshield.faces.analyzer import FaceAnalyzer
from deepshield.faces.geometry import iou
from deepshield.faces.types import Face, FaceTrack
from deepshield.media import Frame, Media
from deepshield.media.prefetch import AHEAD_BUDGET_BYTES, Prefetcher

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


def _groups(frames: Iterable[Frame]) -> Iterator[list[Frame]]:
    """Runs of consecutive frames (by index), each as soon as it is complete."""
    group: list[Frame] = []
    for frame in frames:
        if group and frame.index != group[-1].index + 1:
            yield group
            group = []
        group.append(frame)
    if group:
        yield group


def _followed_runs(analyzer: FaceAnalyzer, run: list[Frame]) -> list[list[Face]]:
    """Each face found in the run's first frame, followed through the rest by its mesh (`FaceAnalyzer.follow`):
    the chains that last all the run's frames."""
    first = run[0]
    chains = []
    for face in analyzer.analyze(first.rgb, frame_index=first.index, time_s=first.time_s):
        if face.landmarks is None or max(face.width, face.height) < MIN_FACE_PX:
            continue
        chain = [face]
        for frame in run[1:]:
            nxt = analyzer.follow(frame.rgb, chain[-1], frame_index=frame.index, time_s=frame.time_s)
            if nxt is None:
                break
            chain.append(nxt)
        if len(chain) == len(run):
            chains.append(chain)
    return chains


def _detected_runs(analyzer: FaceAnalyzer, run: list[Frame]) -> list[list[Face]]:
    """The slower way, kept as the benchmarks' baseline: faces found in every frame, linked by box overlap."""
    frames = [(f.rgb, analyzer.analyze(f.rgb, frame_index=f.index, time_s=f.time_s)) for f in run]
    return [chain for _, chain in _runs(frames, len(run))]


def window_groups(media: Media, frames: int, windows: int) -> Iterator[list[Frame]]:
    """The decoded windows of `frames` consecutive frames (one spare each), as runs of consecutive frames."""
    fps = media.info.fps or 25.0
    # One frame more per window: the first frame after a seek can land one frame off, which breaks the run.
    return _groups(media.frames(WindowSampling(count=None, windows=windows, length=frames + 1, frame_rate=fps)))


def decode_windows_now(media: Media, frames: int, windows: int) -> Prefetcher[list[Frame]]:
    """The windows decoded from now on in a background thread, as many ahead as `AHEAD_BUDGET_BYTES` holds: a
    scan starts it before its sampled frames, whose decoding leaves that thread idle most of the time."""
    group_bytes = (frames + 1) * max(1, (media.info.width or 0) * (media.info.height or 0) * 3)
    depth = max(1, min(windows, AHEAD_BUDGET_BYTES // group_bytes))
    return Prefetcher(lambda: window_groups(media, frames, windows), depth=depth)


def score_tracks(
    media: Media,
    analyzer: FaceAnalyzer,
    detector: TemporalDetector,
    tracks: list[FaceTrack],
    windows: int,
    follow: bool = True,
    groups: Iterable[list[Frame]] | None = None,
) -> TemporalOutcome:
    """Temporal scores of a video's tracks from `windows` extra runs of the detector's K consecutive frames.

    `follow` finds the faces in a run's first frame only and follows them by their mesh (the default); False
    runs the face detector on every frame, as version 2 was first scored. `groups` are the windows already being
    decoded (`decode_windows_now`); without them they are decoded here, in this thread."""
    out = TemporalOutcome()
    k = detector.frames
    clips: list[np.ndarray] = []
    owners: list[int] = []
    find_runs = _followed_runs if follow else _detected_runs
    t = time.perf_counter()
    for g in groups if groups is not None else window_groups(media, k, windows):
        out.decode_s += time.perf_counter() - t
        t1 = time.perf_counter()
        for s in range(len(g) - k, -1, -k):  # runs of K consecutive frames, from the window's end
            run = g[s : s + k]
            for chain in find_runs(analyzer, run):
                lms = [f.landmarks for f in chain if f.landmarks is not None]
                crops, _ = stable_crops([f.rgb for f in run], lms)
                clips.append(crops)
                owners.append(_track_of(chain[k // 2], tracks))
        out.faces_s += time.perf_counter() - t1
        t = time.perf_counter()
    if not clips:
        return out
    t2 = time.perf_counter()
    probs = detector.clip_scores(clips)
    out.detector_s = time.perf_counter() - t2
    out.clips = len(clips)
    for tid in sorted(set(owners)):
        out.track_scores[tid] = float(np.mean([p for p, o in zip(probs, owners, strict=True) if o == tid]))
    return out
