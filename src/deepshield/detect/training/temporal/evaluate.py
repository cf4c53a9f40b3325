"""`deepshield temporal-evaluate`: the temporal detector's video-level AUC on a labelled dataset, overall and per
method, beside another detector's video scores for the same files (a `deepshield evaluate` scores.json), and the
share of real videos flagged at its threshold.

Videos only (a photo has no time); every video is scored from `windows` runs of consecutive frames of its main
face (`clips.video_clips`), the mean of the clips' probabilities. Per method, a method's fakes are compared with
the real videos of the same pool, as `deepshield evaluate` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepshield.detect.temporal import Fusion, TemporalDetector
from deepshield.detect.training.datasets import EvalItem
from deepshield.detect.training.evaluate import method_rows
from deepshield.detect.training.identities import VIDEO_SUFFIXES
from deepshield.detect.training.metrics import summarize
from deepshield.detect.training.temporal.clips import video_clips
from deepshield.errors import DeepshieldError
from deepshield.faces import FaceAnalyzer
from deepshield.textfiles import read_json_file


@dataclass
class VideoResult:
    path: str
    label: int
    method: str
    real_pool: str
    score: float | None  # None: no run of consecutive frames with the face, or an error
    clip_scores: list[float]
    seconds: float
    error: str | None = None
    baseline: float | None = None  # the other detector's video score for the same file


def score_videos(
    items: list[EvalItem],
    detector: TemporalDetector,
    windows: int = 4,
    progress: Callable[[str], None] | None = None,
) -> list[VideoResult]:
    out = []
    with FaceAnalyzer() as analyzer:
        for item in items:
            if item.path.suffix.lower() not in VIDEO_SUFFIXES:
                continue
            if progress:
                progress(item.path.name)
            t0 = time.perf_counter()
            scores: list[float] = []
            error = None
            try:
                clips = [c for c, _ in video_clips(analyzer, item.path, windows, detector.frames)]
                scores = detector.clip_scores(clips).tolist() if clips else []
            except DeepshieldError as e:
                error = e.message
            out.append(
                VideoResult(
                    str(item.path),
                    item.label,
                    item.method,
                    item.real_pool,
                    float(np.mean(scores)) if scores else None,
                    [round(s, 4) for s in scores],
                    round(time.perf_counter() - t0, 2),
                    error,
                )
            )
    return out


def attach_baseline(results: list[VideoResult], scores_json: Path) -> int:
    """Set each result's `baseline` from a `deepshield evaluate` scores.json (by path); returns how many matched.

    Paths are compared resolved, so a file scored through a folder of links (the corpus' real videos linked
    beside the dev fakes, as `evaluate` needs real/ and fake/) matches the same file scored from the corpus."""
    rep = read_json_file(scores_json, "scores file")
    by_path = {_same_file(str(i["path"])): i.get("video_score") for i in rep.get("items", [])}
    n = 0
    for r in results:
        score = by_path.get(_same_file(r.path))
        if score is not None:
            r.baseline = float(score)
            n += 1
    return n


def _same_file(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return path


def _auc_rows(rows: list[VideoResult], threshold: float, n_boot: int) -> dict[str, Any]:
    both = [r for r in rows if r.score is not None]
    y = np.array([r.label for r in both])
    if len(set(y.tolist())) < 2:
        return {"n": len(both)}
    out: dict[str, Any] = {"temporal": summarize(y, np.array([r.score for r in both]), threshold, n_boot)}
    with_base = [r for r in both if r.baseline is not None]
    yb = np.array([r.label for r in with_base])
    if len(set(yb.tolist())) == 2:
        base = np.array([r.baseline for r in with_base])
        temp = np.array([r.score for r in with_base])
        out["baseline"] = summarize(yb, base, None, n_boot)
        out["temporal_same_items"] = summarize(yb, temp, None, n_boot)
        # Illustration only (the two scores are not calibrated to each other): the mean of the two probabilities.
        out["mean_of_both"] = summarize(yb, (base + temp) / 2, None, n_boot)
    return out


def summary(results: list[VideoResult], threshold: float, n_boot: int = 1000) -> dict[str, Any]:
    """Metrics over all videos and per method; the share of real videos flagged at `threshold`."""

    def key(r: VideoResult) -> tuple[int, str, str]:
        return r.label, r.method, r.real_pool

    methods = sorted({r.method for r in results if r.label == 1})
    reals = [r.score for r in results if r.label == 0 and r.score is not None]
    return {
        "threshold": threshold,
        "all": _auc_rows(results, threshold, n_boot),
        "by_method": {m: _auc_rows(method_rows(results, m, key), threshold, 0) for m in methods},
        "real_flagged": float(np.mean([s >= threshold for s in reals])) if reals else None,
        "n_real": len(reals),
        "n_unscored": sum(r.score is None for r in results),
        "seconds_per_video": float(np.mean([r.seconds for r in results])) if results else None,
        "items": [asdict(r) for r in results],
    }


def format_lines(rep: dict[str, Any]) -> list[str]:
    def auc_of(d: dict[str, Any], k: str) -> str:
        m = d.get(k)
        if not m or "auc" not in m:
            return "  -  "
        ci = m.get("auc_ci95")
        return f"{m['auc']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")

    lines = []
    for name, d in [("all videos", rep["all"]), *rep["by_method"].items()]:
        n = d.get("temporal", {})
        counts = f"{n.get('n_real', '?')} real, {n.get('n_fake', '?')} fake"
        lines.append(
            f"{name} ({counts}): temporal {auc_of(d, 'temporal')}; same items: baseline {auc_of(d, 'baseline')}, "
            f"mean of both {auc_of(d, 'mean_of_both')}"
        )
    if rep["real_flagged"] is not None:
        lines.append(f"real videos flagged at {rep['threshold']}: {rep['real_flagged']:.0%} of {rep['n_real']}")
    if rep["n_unscored"]:
        lines.append(f"{rep['n_unscored']} videos had no run of consecutive frames with a face (left out)")
    return lines


def attach_report(results: list[VideoResult], report: dict[str, Any]) -> None:
    """Set each result's `baseline` to the frame detector's video score in a `deepshield evaluate` report."""
    by_path = {str(i["path"]): i.get("video_score") for i in report.get("items", [])}
    for r in results:
        v = by_path.get(r.path)
        r.baseline = None if v is None else float(v)


def fused_lines(
    results: list[VideoResult],
    fusion: Fusion | None,
    frame_name: str,
    other: dict[str, Any] | None = None,
    n_boot: int = 1000,
) -> list[str]:
    """Video-level AUC of the frame detector, the temporal detector and their fusion on the videos that have
    both scores, overall and per method; `other` (another version's `deepshield evaluate` report) beside."""
    other_by_path = {str(i["path"]): i.get("video_score") for i in (other or {}).get("items", [])}

    def key(r: VideoResult) -> tuple[int, str, str]:
        return r.label, r.method, r.real_pool

    both = [r for r in results if r.score is not None and r.baseline is not None]
    methods = sorted({r.method for r in both if r.label == 1})
    head = f"{'video-level AUC, videos only':28} {frame_name:20} {'temporal':20} {'fused':20}"
    lines = [head + (f" frame v{other.get('detector_version', '?')}" if other else "")]
    for name, rows in [("all videos", both), *((m, method_rows(both, m, key)) for m in methods)]:
        y = np.array([r.label for r in rows])
        if len(set(y.tolist())) < 2:
            continue
        cols = [np.array([r.baseline for r in rows]), np.array([r.score for r in rows])]
        if fusion is not None:
            cols.append(np.array([fusion.probability(r.baseline, r.score) for r in rows]))  # type: ignore[arg-type]
        if other:
            o = [other_by_path.get(r.path) for r in rows]
            cols.append(np.array([np.nan if v is None else v for v in o], np.float64))
        cells = []
        for c in cols:
            ok = ~np.isnan(c)
            if len(set(y[ok].tolist())) < 2:
                cells.append(f"{'-':20}")
                continue
            m = summarize(y[ok], c[ok], None, n_boot if name == "all videos" else 0)
            ci = m.get("auc_ci95")
            cells.append(f"{m['auc']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "").ljust(14))
        if fusion is None:
            cells.insert(2, f"{'(no fusion)':20}")
        n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
        lines.append(f"  {name + f' ({n_real} real, {n_fake} fake)':26} " + " ".join(f"{c:20}" for c in cells))
    return lines
