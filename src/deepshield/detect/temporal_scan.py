"""The temporal detector inside a scan: a few extra windows of consecutive frames, each face followed through
each window, its clips scored, and the clips given to the scan's tracks.

The frame detector's frames are spread over the whole video, too far apart for a temporal detector, so a scan
decodes `windows` runs of K consecutive frames more (`WindowSampling`), in a background thread started before the
sampled frames (`decode_windows_now`). Faces are found in a run's first frame and followed through the rest by
fitting the mesh inside the box of the frame before (`FaceAnalyzer.follow`, a third of the cost of finding them
again); a face followed through all K frames is one clip (`stable_crops`). A clip belongs to the scan track whose
face nearest in time overlaps it most (its own track, -1, when none does). A track's temporal score is the mean of
its clips' probabilities; the video's is the highest track score, as a swap of one person must not be averaged
away.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from deepshield.detect.temporal import TemporalDetector, WindowSampling, stable_crops
from deepshield.faces.analyzer import FaceAnalyzer
from deepshield.faces.geometry import iou
from deepshield.faces.types import Face, FaceTrack
from deepshield.media import Frame, Media
from deepshield.media.prefetch import AHEAD_BUDGET_BYTES, Prefetcher
from deepshield.scan_result import ClipScore

#: A face in the next frame continues a face of this one when their boxes overlap this much.
FOLLOW_IOU = 0.3
#: Faces smaller than this (longer box side, pixels) carry too little motion detail to score.
MIN_FACE_PX = 40.0


@dataclass
class TemporalOutcome:
    track_scores: dict[int, float] = field(default_factory=dict)
    clips: int = 0
    #: Each clip's score at its middle frame's time, with its track, in time order.
    clip_scores: list[ClipScore] = field(default_factory=list)
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


@dataclass
class WindowClips:
    """A video's windows as scored clips, before they are given to the scan's tracks."""

    probs: np.ndarray
    #: The middle face of each clip's run, which says whose track the clip is.
    middles: list[Face]
    decode_s: float = 0.0
    faces_s: float = 0.0
    detector_s: float = 0.0


def window_clips(
    groups: Iterable[list[Frame]],
    analyzer: FaceAnalyzer,
    detector: TemporalDetector,
    follow: bool = True,
    stop: threading.Event | None = None,
) -> WindowClips:
    """Every run of the detector's K consecutive frames in `groups`, its faces followed (`follow`, the default)
    or found in every frame (the slower way, as version 2 was first scored), cut into clips and scored."""
    k = detector.frames
    clips: list[np.ndarray] = []
    middles: list[Face] = []
    find_runs = _followed_runs if follow else _detected_runs
    decode_s = faces_s = 0.0
    t = time.perf_counter()
    try:
        for g in groups:
            decode_s += time.perf_counter() - t
            if stop is not None and stop.is_set():
                break
            t1 = time.perf_counter()
            for s in range(len(g) - k, -1, -k):  # runs of K consecutive frames, from the window's end
                run = g[s : s + k]
                for chain in find_runs(analyzer, run):
                    lms = [f.landmarks for f in chain if f.landmarks is not None]
                    crops, _ = stable_crops([f.rgb for f in run], lms)
                    clips.append(crops)
                    middles.append(chain[k // 2])
            faces_s += time.perf_counter() - t1
            t = time.perf_counter()
    finally:
        close = getattr(groups, "close", None)  # a decoder stopped early closes its file now
        if close is not None:
            close()
    t2 = time.perf_counter()
    probs = detector.clip_scores(clips) if clips else np.zeros(0)
    return WindowClips(probs, middles, decode_s, faces_s, time.perf_counter() - t2 if clips else 0.0)


def assign_clips(scored: WindowClips, tracks: list[FaceTrack]) -> TemporalOutcome:
    """Each clip given to its scan track; a track's score is the mean of its clips' probabilities."""
    out = TemporalOutcome(
        clips=len(scored.middles), decode_s=scored.decode_s, faces_s=scored.faces_s, detector_s=scored.detector_s
    )
    owners = [_track_of(f, tracks) for f in scored.middles]
    out.clip_scores = sorted(
        (
            ClipScore(round(f.time_s, 3), o, float(p))
            for f, o, p in zip(scored.middles, owners, scored.probs, strict=True)
        ),
        key=lambda c: (c.time_s, c.track_id),
    )
    for tid in sorted(set(owners)):
        out.track_scores[tid] = float(np.mean([c.score for c in out.clip_scores if c.track_id == tid]))
    return out


def score_tracks(
    media: Media,
    analyzer: FaceAnalyzer,
    detector: TemporalDetector,
    tracks: list[FaceTrack],
    windows: int,
    follow: bool = True,
    groups: Iterable[list[Frame]] | None = None,
) -> TemporalOutcome:
    """Temporal scores of a video's tracks from `windows` extra runs of the detector's K consecutive frames, in
    this thread. `groups` are the windows already being decoded (`decode_windows_now`); without them they are
    decoded here."""
    source = groups if groups is not None else window_groups(media, detector.frames, windows)
    return assign_clips(window_clips(source, analyzer, detector, follow), tracks)


class BackgroundWindows:
    """The windows decoded, followed and scored in a second thread with a face analyzer of its own, started
    before the sampled frames: on two cores the main thread finds faces in those while this one works, so the
    temporal part costs the scan little wall time. Always `close` it (it waits for the thread)."""

    def __init__(self, media: Media, analyzer: FaceAnalyzer, detector: TemporalDetector, windows: int) -> None:
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="deepshield-temporal")
        groups = window_groups(media, detector.frames, windows)
        self._future = self._pool.submit(window_clips, groups, analyzer, detector, True, self._stop)

    def result(self) -> WindowClips:
        return self._future.result()

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)
