"""Consecutive-frame face crops from videos: the clips the temporal detector learns from and scores.

A temporal detector must see the face move, not the crop: aligning every frame on its own landmarks adds the
mesh's jitter to each frame, which is itself a temporal inconsistency that real and fake videos share. So the
crop geometry (centre, size, roll) of a face track is smoothed over time before cropping, and the same function
makes the crops for training (`build_clip_cache`, every frame of each real video, decoded once and cached like
`facecache.py`) and for scoring (`video_clips`, a few windows of consecutive frames from any video). Every file
is opened through `deepshield.media.open_media`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepshield.detect.temporal import (
    CLIP_CACHE_MARGIN,
    CLIP_CACHE_SIZE,
    SMOOTH_SIGMA,
    WindowSampling,
    crop_matrix,
    input_crop,
    smooth_geometry,
    stable_crops,
)
from deepshield.detect.training.facecache import _index_records, _key, cached_videos
from deepshield.errors import DeepshieldError
from deepshield.faces import Face, FaceAnalyzer
from deepshield.faces.geometry import iou
from deepshield.media import FrameSampling, open_media

__all__ = [
    "CLIP_CACHE_MARGIN",
    "CLIP_CACHE_SIZE",
    "SMOOTH_SIGMA",
    "VideoFrames",
    "WindowSampling",
    "crop_matrix",
    "input_crop",
    "smooth_geometry",
    "stable_crops",
]

#: A face in the next frame continues the track when its box overlaps the last one this much.
TRACK_IOU = 0.3


@dataclass
class VideoFrames:
    """Every tracked frame of one cached video: crops, their landmarks and the run each belongs to."""

    rel: str
    group: str
    images: np.ndarray  # N x S x S x 3 uint8
    landmarks: np.ndarray  # N x 478 x 2 float32, crop pixels
    segment: np.ndarray  # N int: frames of one segment are consecutive in the video

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def starts(self, length: int) -> np.ndarray:
        """Indices where `length` consecutive frames of one segment begin."""
        n = len(self)
        if n < length:
            return np.zeros(0, np.int64)
        ok = self.segment[: n - length + 1] == self.segment[length - 1 :]
        return np.nonzero(ok)[0]


def input_points(points: np.ndarray, src: int, margin: float, size: int) -> np.ndarray:
    """Landmarks of cached crops (side `src`) in `input_crop`'s pixels (no shift, no flip)."""
    extent = src / (1 + 2 * CLIP_CACHE_MARGIN)
    s = size / (extent * (1 + 2 * margin))
    return ((points - src / 2) * s + size / 2).astype(np.float32)


def _follow(faces: list[Face], last: Face | None) -> Face | None:
    """The face that continues the track (the largest face with a mesh when there is no track yet)."""
    meshed = [f for f in faces if f.landmarks is not None]
    if last is None:
        return meshed[0] if meshed else None
    best = max(meshed, key=lambda f: iou(f.box, last.box), default=None)
    return best if best is not None and iou(best.box, last.box) >= TRACK_IOU else None


def track_runs(
    analyzer: FaceAnalyzer, frames: Iterable[tuple[int, np.ndarray]], min_face_px: float = 40.0
) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """Runs of consecutive frames (by frame index) in which the main face is tracked: (frames, landmarks) each.
    A frame without the face, a jump in frame index or a jump of the face ends a run."""
    runs: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
    last: Face | None = None
    last_index = -2
    for index, rgb in frames:
        face = _follow(analyzer.analyze(rgb), last if index == last_index + 1 else None)
        if face is not None and max(face.width, face.height) < min_face_px:
            face = None
        if face is None:
            last, last_index = None, index
            continue
        if last is None:
            runs.append(([], []))
        assert face.landmarks is not None
        runs[-1][0].append(rgb)
        runs[-1][1].append(face.landmarks)
        last, last_index = face, index
    return runs


def extract_video(
    analyzer: FaceAnalyzer, path: Path, max_frames: int = 300, min_run: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable crops, landmarks and segment ids of the main face in the first `max_frames` frames of a video."""
    media = open_media(path)
    try:
        fps = media.info.fps or 25.0

        def frames() -> Iterable[tuple[int, np.ndarray]]:
            for i, f in enumerate(media.frames(FrameSampling.rate(fps, max_frames=max_frames))):
                yield i, f.rgb

        runs = track_runs(analyzer, frames())
    finally:
        media.close()
    images, lms, seg = [], [], []
    for k, (rgbs, marks) in enumerate(r for r in runs if len(r[0]) >= min_run):
        im, lm = stable_crops(rgbs, marks)
        images.append(im)
        lms.append(lm)
        seg.append(np.full(len(im), k, np.int32))
    if not images:
        s = CLIP_CACHE_SIZE
        return np.zeros((0, s, s, 3), np.uint8), np.zeros((0, 478, 2), np.float32), np.zeros(0, np.int32)
    return np.concatenate(images), np.concatenate(lms), np.concatenate(seg)


_worker: dict[str, FaceAnalyzer] = {}


def _extract_job(job: tuple[Path, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One video's crops in a worker process (one FaceAnalyzer per process); an unreadable file gives none."""
    path, max_frames = job
    if "analyzer" not in _worker:
        _worker["analyzer"] = FaceAnalyzer()
    try:
        return extract_video(_worker["analyzer"], path, max_frames=max_frames)
    except DeepshieldError:
        return np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 478, 2), np.float32), np.zeros(0, np.int32)


def build_clip_cache(
    items: Iterable[tuple[Path, str, str, str]],
    out_dir: Path,
    max_frames: int = 300,
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> dict[str, int]:
    """Extract every (path, rel, group, split) video into `out_dir` (index.jsonl + one .npz per video, the face
    cache's layout), in `jobs` worker processes when more than one; videos already there are skipped, so a
    stopped run resumes. Returns frames per split."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "clips").mkdir(exist_ok=True)
    index_path = out_dir / "index.jsonl"
    done = {rec["rel"]: rec for rec in _index_records(index_path)} if index_path.is_file() else {}
    items = list(items)
    counts: dict[str, int] = {}
    for _, rel, _, split in items:
        if rel in done:
            counts[split] = counts.get(split, 0) + int(done[rel]["n"])
            if progress:
                progress(rel)
    todo = [it for it in items if it[1] not in done]
    with index_path.open("a") as index:

        def keep(item: tuple[Path, str, str, str], out: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
            _, rel, group, split = item
            imgs, lms, seg = out
            if len(imgs):
                np.savez(out_dir / "clips" / f"{_key(rel)}.npz", images=imgs, landmarks=lms, segment=seg)
            index.write(json.dumps({"rel": rel, "group": group, "split": split, "n": len(imgs)}) + "\n")
            index.flush()
            counts[split] = counts.get(split, 0) + len(imgs)
            if progress:
                progress(rel)

        if jobs <= 1:
            try:
                for item in todo:
                    keep(item, _extract_job((item[0], max_frames)))
            finally:
                if "analyzer" in _worker:
                    _worker.pop("analyzer").close()
            return counts
        from concurrent.futures import as_completed

        from deepshield.workers import spawn_pool

        with spawn_pool(jobs) as pool:
            futures = {pool.submit(_extract_job, (it[0], max_frames)): it for it in todo}
            for f in as_completed(futures):
                keep(futures[f], f.result())
    return counts


def load_clip_cache(cache_dir: Path, splits: Iterable[str]) -> list[VideoFrames]:
    """The cached videos of the given splits."""
    wanted = set(splits)
    keys = ("images", "landmarks", "segment")
    videos = [
        VideoFrames(rec["rel"], rec["group"], z["images"], z["landmarks"], z["segment"])
        for rec, z in cached_videos(cache_dir, wanted, "clips", keys, "clip cache", "temporal-cache")
    ]
    if not videos:
        raise DeepshieldError(f"the clip cache at {cache_dir} holds no video of splits {sorted(wanted)}")
    return videos


def video_clips(
    analyzer: FaceAnalyzer, path: Path, windows: int = 4, length: int = 8
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(crops, landmarks) at the cache's size and margin for up to `windows` runs of `length` consecutive frames
    of a video's main face, sampled as `WindowSampling` says: what `TemporalDetector.score_clips` scores after
    `input_crop`."""
    media = open_media(path)
    try:
        fps = media.info.fps or 25.0
        sampling = WindowSampling(count=None, windows=windows, length=length, frame_rate=fps)
        frames = [(f.index, f.rgb) for f in media.frames(sampling)]
    finally:
        media.close()
    out = []
    for rgbs, marks in track_runs(analyzer, frames):
        for k in range(len(rgbs) // length):  # a run longer than one window (short videos) gives several
            sl = slice(k * length, (k + 1) * length)
            out.append(stable_crops(rgbs[sl], marks[sl]))
    return out
