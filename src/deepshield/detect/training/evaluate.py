"""`deepshield evaluate`: score labelled media and report frame- and video-level figures.

The dataset layouts it reads (FaceForensics++, Celeb-DF, DFDC and its preview, real/ + fake/ folders) are in
`detect.datasets`.
Protocol (as in the SBI paper): N evenly spaced frames per video, every face scored, the max over faces per
frame, the mean over frames per video. A photo is a one-frame video. As in `deepshield scan`, a face cut by the
frame edge counts for its frame only when it is the frame's largest face (`detect.aggregate`). Every file goes
through `open_media`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from deepshield.detect.aggregate import pick_frame_face
from deepshield.detect.base import DetectorInfo
from deepshield.detect.training.datasets import Dataset, EvalItem
from deepshield.detect.training.metrics import summarize
from deepshield.errors import DeepshieldError, MediaError
from deepshield.media import FrameSampling, MediaKind, open_media
from deepshield.media.prefetch import decode_ahead

E = TypeVar("E")

#: The score an item without a face gets in the second, every-item video-level figure.
NO_FACE_SCORE = 0.5

#: Part of the crop-cache key: raised whenever what a cache file holds changes (3: face sizes, which are partial).
_CROP_CACHE_VERSION = 3


@dataclass
class ItemResult:
    item: EvalItem
    kind: str = ""
    #: {"index", "time_s", "logit", "score", "faces", "partial_faces"} per frame with a face
    frames: list[dict[str, float]] = field(default_factory=list)
    video_score: float | None = None
    error: str | None = None


@dataclass
class _FrameCrops:
    index: int
    time_s: float
    crops: np.ndarray  # N x S x S x 3 uint8
    partial: np.ndarray  # N bool
    sizes: np.ndarray  # N float: the face box's longer side


def _face_crops(item: EvalItem, analyzer: Any, detector: Any, frames: int, res: ItemResult) -> list[_FrameCrops]:
    """Crops of every face, and which faces are cut by the frame edge, for the sampled frames of one file."""
    out: list[_FrameCrops] = []
    media = open_media(item.path)
    try:
        res.kind = media.info.kind.value
        if media.info.kind is MediaKind.AUDIO:
            raise MediaError("audio only")
        # A video's next frames are decoded while faces are found in this one (see media.prefetch).
        with closing(decode_ahead(media, lambda: media.frames(FrameSampling.evenly(frames)))) as source:
            for fr in source:
                faces = analyzer.analyze(fr.rgb, frame_index=fr.index, time_s=fr.time_s)
                if faces:
                    crops = np.stack(detector.crops(fr.rgb, faces))
                    partial = np.array([f.is_partial for f in faces])
                    sizes = np.array([max(f.width, f.height) for f in faces], np.float32)
                    out.append(_FrameCrops(fr.index, fr.time_s, crops, partial, sizes))
    finally:
        media.close()
    return out


def _crop_cache_file(item: EvalItem, detector: Any, frames: int, crop_cache: Path) -> Path:
    """Keyed by the file's content, the frame count, the crop size and margin, and the cache format."""
    h = hashlib.sha1()
    with open(item.path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    meta = detector.meta
    h.update(f"{frames}|{meta.input_size}|{meta.margin}|{_CROP_CACHE_VERSION}".encode())
    return crop_cache / f"{h.hexdigest()[:20]}.npz"


def _read_crops(cache_file: Path) -> tuple[str, list[_FrameCrops]] | None:
    """(kind, crops per frame) from a cache file; None when there is none or it is damaged (found again)."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file) as z:
            kind = str(z["kind"])
            counts = z["counts"].tolist()
            crops, partial, sizes = z["crops"], z["partial"], z["sizes"]
            offs = np.r_[0, np.cumsum(counts)].astype(int)
            return kind, [
                _FrameCrops(int(i), float(t), *(a[offs[k] : offs[k + 1]] for a in (crops, partial, sizes)))
                for k, (i, t) in enumerate(zip(z["index"], z["time"], strict=True))
            ]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def _write_crops(cache_file: Path, kind: str, per_frame: list[_FrameCrops], size: int) -> None:
    """Written beside and renamed into place, so a run stopped mid-write leaves no half file to resume from."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f"{cache_file.stem}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(
            f,
            kind=kind,
            index=np.array([p.index for p in per_frame], np.int64),
            time=np.array([p.time_s for p in per_frame], np.float64),
            counts=np.array([len(p.crops) for p in per_frame], np.int64),
            crops=np.concatenate([p.crops for p in per_frame]) if per_frame else np.zeros((0, size, size, 3), np.uint8),
            partial=np.concatenate([p.partial for p in per_frame]) if per_frame else np.zeros(0, bool),
            sizes=np.concatenate([p.sizes for p in per_frame]) if per_frame else np.zeros(0, np.float32),
        )
    tmp.replace(cache_file)


def score_item(item: EvalItem, analyzer: Any, detector: Any, frames: int, crop_cache: Path | None = None) -> ItemResult:
    """Per-frame max-over-faces logit and calibrated score of one file.

    `crop_cache` keeps each file's face crops, so re-scoring another checkpoint, or a run started again after
    it stopped, skips decoding and face analysis.
    """
    res = ItemResult(item)
    try:
        cache_file = _crop_cache_file(item, detector, frames, crop_cache) if crop_cache is not None else None
        cached = _read_crops(cache_file) if cache_file is not None else None
        if cached is not None:
            res.kind, per_frame = cached
        else:
            per_frame = _face_crops(item, analyzer, detector, frames, res)
            if cache_file is not None:
                _write_crops(cache_file, res.kind, per_frame, detector.meta.input_size)
    except (MediaError, OSError) as e:
        res.error = str(e)
        return res
    return _score_crops(res, per_frame, detector)


def _score_crops(res: ItemResult, per_frame: list[_FrameCrops], detector: Any) -> ItemResult:
    """Each frame's face (`pick_frame_face`) scored, and the video score, the mean over frames. All of a file's
    crops go through the network in one batched call (per-call overhead dominates small batches)."""
    from deepshield.detect.onnx_detector import calibrate

    all_logits = detector.logits(np.concatenate([fc.crops for fc in per_frame])) if per_frame else np.zeros(0)
    offsets = np.cumsum([0] + [len(fc.crops) for fc in per_frame])
    for n, fc in enumerate(per_frame):
        logits = all_logits[offsets[n] : offsets[n + 1]]
        k = pick_frame_face(logits.tolist(), fc.partial.tolist(), fc.sizes.tolist())
        score = float(calibrate(logits[k : k + 1], detector.meta.platt_a, detector.meta.platt_b)[0])
        res.frames.append(
            {
                "index": fc.index,
                "time_s": round(fc.time_s, 3),
                "logit": float(logits[k]),
                "score": score,
                "faces": len(fc.crops),
                "partial_faces": int(fc.partial.sum()),
            }
        )
    if res.frames:
        res.video_score = float(np.mean([f["score"] for f in res.frames]))
    return res


#: One worker process's face analyzer and detector, made on its first item (see `_extract_crops`).
_worker: dict[str, Any] = {}


def _extract_crops(job: tuple[EvalItem, str, tuple[int, float], int, Path]) -> Path | None:
    """Find one file's faces in a worker process and keep its crops in the cache; the cache file, or None
    when the file cannot be read (the main process then scores it itself, which records the error)."""
    from deepshield.detect.registry import get_detector
    from deepshield.faces import FaceAnalyzer

    item, detector_name, crop_shape, frames, crop_cache = job
    if "detector" not in _worker:
        detector: Any = get_detector(detector_name)
        if detector is None:
            raise DeepshieldError(f"detector {detector_name!r} is not installed (no weights)")
        if (detector.meta.input_size, detector.meta.margin) != crop_shape:
            raise DeepshieldError(f"the worker processes' detector {detector_name!r} crops faces unlike the main one")
        _worker["detector"] = detector
    detector = _worker["detector"]
    res = ItemResult(item)
    try:
        cache_file = _crop_cache_file(item, detector, frames, crop_cache)
        if _read_crops(cache_file) is not None:
            return cache_file  # found by an earlier run
        if "analyzer" not in _worker:
            _worker["analyzer"] = FaceAnalyzer()
        per_frame = _face_crops(item, _worker["analyzer"], detector, frames, res)
        _write_crops(cache_file, res.kind, per_frame, detector.meta.input_size)
    except (MediaError, OSError):
        return None
    return cache_file


def _crops_in_processes(
    items: list[EvalItem], detector: Any, frames: int, crop_cache: Path, jobs: int
) -> Iterator[tuple[int, Path | None]]:
    """(index of the item, its cache file or None) as the `jobs` worker processes finish them, in any order."""
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    from deepshield.workers import spawn_pool

    shape = (detector.meta.input_size, detector.meta.margin)
    pool = spawn_pool(jobs)
    try:
        futures = {
            pool.submit(_extract_crops, (it, detector.info.name, shape, frames, crop_cache)): i
            for i, it in enumerate(items)
        }
        for done in as_completed(futures):
            yield futures[done], done.result()
    except BrokenProcessPool:
        pool.shutdown(cancel_futures=True)
        raise DeepshieldError("a worker process died (out of memory?); run again with fewer --jobs") from None
    except BaseException:
        # Interrupted, failed, or the caller stopped: drop the queued files rather than wait for every one.
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()


def _metrics(results: list[ItemResult], threshold: float, n_boot: int) -> dict[str, Any]:
    scored = [r for r in results if r.video_score is not None]
    out: dict[str, Any] = {}
    if not scored:
        return out
    vy = np.array([r.item.label for r in scored])
    vs = np.array([r.video_score for r in scored])
    fy = np.array([r.item.label for r in scored for _ in r.frames])
    fs = np.array([f["score"] for r in scored for f in r.frames])
    if len(set(vy.tolist())) == 2:
        out["video"] = summarize(vy, vs, threshold, n_boot=n_boot)
        out["frame"] = summarize(fy, fs, threshold, n_boot=n_boot)
    else:
        out["video"] = {
            "n": len(vy),
            "n_real": int((vy == 0).sum()),
            "n_fake": int((vy == 1).sum()),
            "flagged_at_threshold": float((vs >= threshold).mean()),
        }
    return out


def method_rows(entries: Sequence[E], method: str, key: Callable[[E], tuple[int, str, str]]) -> list[E]:
    """One method's fakes and the real entries they are compared with: the reals of the same pool
    (FaceForensics++: YouTube or actors), or every real entry when none shares it. `key` gives an entry's
    (label, method, real pool), so results and the report's item records are split alike."""
    rows = [(e, *key(e)) for e in entries]
    fakes = [e for e, label, m, _ in rows if label == 1 and m == method]
    pools = {pool for _, label, m, pool in rows if label == 1 and m == method}
    reals = [e for e, label, _, _ in rows if label == 0]
    return ([e for e, label, _, pool in rows if label == 0 and pool in pools] or reals) + fakes


def _by_method(results: list[ItemResult], threshold: float, n_boot: int) -> dict[str, Any]:
    def key(r: ItemResult) -> tuple[int, str, str]:
        return r.item.label, r.item.method, r.item.real_pool

    methods = sorted({r.item.method for r in results if r.item.label == 1})
    return {m: _metrics(method_rows(results, m, key), threshold, n_boot) for m in methods}


def _evaluate_in_processes(
    items: list[EvalItem],
    detector: Any,
    frames: int,
    crop_cache: Path | None,
    jobs: int,
    progress: Callable[[str], None] | None,
) -> list[ItemResult]:
    """Faces found in worker processes, each file scored here once its crops are in. Without a crop cache the
    crops pass through a temporary one, each file's deleted once scored: a large dataset's crops would not fit."""
    from deepshield.faces import FaceAnalyzer

    scored: dict[int, ItemResult] = {}
    analyzer: FaceAnalyzer | None = None  # only for files the workers could not read
    try:
        with tempfile.TemporaryDirectory(prefix="deepshield-crops-") as scratch:
            for i, cache_file in _crops_in_processes(items, detector, frames, crop_cache or Path(scratch), jobs):
                cached = _read_crops(cache_file) if cache_file is not None else None
                if cached is None:
                    analyzer = analyzer or FaceAnalyzer()
                    scored[i] = score_item(items[i], analyzer, detector, frames)
                else:
                    scored[i] = _score_crops(ItemResult(items[i], cached[0]), cached[1], detector)
                if crop_cache is None and cache_file is not None:
                    cache_file.unlink(missing_ok=True)
                if progress:
                    progress(items[i].path.name)
    finally:
        if analyzer is not None:
            analyzer.close()
    return [scored[i] for i in range(len(items))]


def evaluate(
    dataset: Dataset,
    detector: Any,
    frames: int = 32,
    n_boot: int = 1000,
    progress: Callable[[str], None] | None = None,
    crop_cache: Path | None = None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Score every item of a labelled dataset (`detect.datasets.discover`); return the figures and every score.

    With `jobs` > 1, faces are found in that many worker processes (each with its own analyzer and the detector
    of the same name) and each file is scored here from its crops as soon as they are found, so the scores are
    the same for any number of jobs. `progress(file name)` is called once per file.
    """
    from deepshield.faces import FaceAnalyzer

    items = dataset.items  # `detect.datasets.limited` takes a quick sample
    if not items:
        raise DeepshieldError(f"{dataset.root}: no media found")
    analyzer: FaceAnalyzer | None = None
    try:
        if jobs > 1:
            results = _evaluate_in_processes(items, detector, frames, crop_cache, jobs, progress)
        else:
            analyzer = FaceAnalyzer()
            results = []
            for it in items:
                if progress:
                    progress(it.path.name)
                results.append(score_item(it, analyzer, detector, frames, crop_cache))
    finally:
        if analyzer is not None:
            analyzer.close()
    return build_report(results, dataset, detector.info, frames, n_boot)


def build_report(
    results: list[ItemResult], dataset: Dataset, info: DetectorInfo, frames: int, n_boot: int
) -> dict[str, Any]:
    """The figures (overall, per kind, per method) and every item's scores."""
    thr = float(info.threshold)
    report: dict[str, Any] = {
        "dataset": str(dataset.root),
        "layout": dataset.layout,
        "selection": dataset.selection,
        "detector": info.name,
        "detector_version": info.version,
        "threshold": thr,
        "frames_per_video": frames,
        "n_items": len(results),
        "n_no_face": sum(1 for r in results if r.video_score is None and not r.error),
        "n_errors": sum(1 for r in results if r.error),
    }
    report["all"] = _metrics(results, thr, n_boot)
    if report["n_no_face"]:
        # Leaving out the items without a face flatters the figure when faces are missed on fakes more often
        # than on reals; scoring them 0.5 (undecided) beside it shows how much.
        undecided = [
            r if r.video_score is not None or r.error else dataclasses.replace(r, video_score=NO_FACE_SCORE)
            for r in results
        ]
        report["all_no_face_undecided"] = {"video": _metrics(undecided, thr, n_boot).get("video", {})}
    by_kind = {}
    for kind in ("video", "image"):
        sub = [r for r in results if r.kind == kind]
        if sub:
            by_kind[kind] = _metrics(sub, thr, n_boot)
    report["by_kind"] = by_kind
    report["by_method"] = _by_method(results, thr, n_boot)
    report["items"] = [
        {
            "path": str(r.item.path),
            "label": r.item.label,
            "method": r.item.method,
            "real_pool": r.item.real_pool,
            "kind": r.kind,
            "video_score": r.video_score,
            "error": r.error,
            "frames": r.frames,
        }
        for r in results
    ]
    return report
