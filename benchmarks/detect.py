"""Detector speed: face crops/s through onnxruntime vs torch eager on the same crops, and the temporal
detector's; a scan (with the temporal detector when installed, and with the frame detector only) beside decoding
only, beside the same scan decoding in line, and beside the scan as first shipped (the face detector on every
window frame, the windows decoded afterwards: `ScanOptions(temporal_fast=False)`; onnxruntime threads spinning);
`deepshield evaluate` with worker processes beside one process; and the headline video-level figures of the
last evaluation (if its scores.json is given).

    PYTHONPATH=src python benchmarks/detect.py [--crops 256] [--batch 16] [--jobs 2] [--scores eval_out/scores.json]

Crops are real aligned faces from the shared corpus when it is present (random pixels otherwise: the speed of
a fixed-size CNN does not depend on content). Prints medians over repeats and the onnxruntime/torch ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from corpus import faces_dir  # noqa: E402
from timing import timed, timed_alternately  # noqa: E402

from deepshield.detect.onnx_detector import load_sbi_detector  # noqa: E402


def real_crops(n: int, size: int, margin: float) -> np.ndarray | None:
    corpus = faces_dir() / "lfw_1000"
    if not corpus.is_dir():
        return None
    from deepshield.faces import FaceAnalyzer, align_face
    from deepshield.media import open_media

    crops: list[np.ndarray] = []
    with FaceAnalyzer() as fa:
        for p in sorted(corpus.glob("*.jpg"))[: n * 2]:
            rgb = next(iter(open_media(p).frames())).rgb
            for f in fa.analyze(rgb)[:1]:
                crops.append(align_face(rgb, f, size=size, margin=margin).image)
            if len(crops) >= min(n, 64):
                break
    if not crops:
        return None
    reps = int(np.ceil(n / len(crops)))
    return np.concatenate([np.stack(crops)] * reps)[:n]


def _spinning_detectors() -> tuple[Any, Any]:
    """The frame and temporal detectors with onnxruntime's threads spin-waiting between calls, as first shipped."""
    from deepshield.detect.onnx_detector import MODEL_NAME, ModelMeta, OnnxSbiDetector, models_dir
    from deepshield.detect.temporal import shipped_temporal

    os.environ["DEEPSHIELD_ORT_SPIN"] = "1"
    try:
        d = models_dir()
        return OnnxSbiDetector(d / f"{MODEL_NAME}.onnx", ModelMeta.load(d / f"{MODEL_NAME}.json")), shipped_temporal()
    finally:
        del os.environ["DEEPSHIELD_ORT_SPIN"]


def scan_benchmark(video: Path, repeats: int) -> None:
    """Wall time of a full scan (32 sampled frames) beside decoding the same frames only."""
    from deepshield.detect.pipeline import Scanner, ScanOptions
    from deepshield.media import FrameSampling, open_media

    info = open_media(video).info

    def decode() -> None:
        m = open_media(video)
        try:
            for _ in m.frames(FrameSampling.evenly(32)):
                pass
        finally:
            m.close()

    ahead = Scanner(ScanOptions(frames=32))
    in_line = Scanner(ScanOptions(frames=32, decode_ahead=False), detector=ahead.detector)
    frame_only = Scanner(ScanOptions(frames=32, use_temporal=False), detector=ahead.detector)
    before = Scanner(ScanOptions(frames=32, temporal_fast=False), *_spinning_detectors())
    try:
        t_dec = timed(decode, repeats)
        # The scans take turns, so a machine that slows down part-way weighs on all alike.
        t_scan, t_in_line, t_frame, t_before = timed_alternately(
            [
                lambda: ahead.scan(video),
                lambda: in_line.scan(video),
                lambda: frame_only.scan(video),
                lambda: before.scan(video),
            ],
            repeats,
        )
        res = ahead.scan(video).result
        res_before = before.scan(video).result
    finally:
        ahead.close()
        in_line.close()
        frame_only.close()
        before.close()
    second = (
        f"with the temporal detector ({res.temporal.clips} runs of consecutive frames, scored in a second thread, "
        f"its own time there "
        f"{res.timing_s.temporal if res.timing_s else '?'} s)"
        if res.temporal is not None
        else "no temporal detector installed"
    )
    print(f"load average before the scans: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"scan of {video.name} ({info.width}x{info.height}, {info.duration_s:.1f} s), 32 frames, {second}: "
        f"{t_scan:.2f} s wall; decode only {t_dec:.2f} s (scan / decode {t_scan / t_dec:.2f}x); "
        f"target < 3 s: {'met' if t_scan < 3 else 'NOT met'}"
    )
    print(f"the same scan with the frame detector only: {t_frame:.2f} s (scan / frame only {t_scan / t_frame:.2f}x)")
    if res.temporal is not None and res_before.temporal is not None:
        print(
            f"baseline, the scan as first shipped (face detector on every window frame, windows decoded "
            f"afterwards, onnxruntime threads spinning): {t_before:.2f} s, its temporal part "
            f"{res_before.timing_s.temporal if res_before.timing_s else '?'} s (now {t_before / t_scan:.2f}x faster); "
            f"temporal score "
            f"{res.temporal.video_score} vs {res_before.temporal.video_score}, frame score {res.video_score} vs "
            f"{res_before.video_score}"
        )
    print(
        f"baseline, the same scan decoding in line (no second thread): {t_in_line:.2f} s "
        f"(decode-ahead {t_in_line / t_scan:.2f}x faster)"
    )


def temporal_benchmark(repeats: int, clips: int = 16) -> None:
    """Face crops/s of the shipped temporal detector through onnxruntime (clips of K crops, random pixels: a
    fixed-size network's speed does not depend on content)."""
    from deepshield.detect.temporal import shipped_temporal

    det = shipped_temporal()
    if det is None:
        print("temporal detector: not installed")
        return
    x = np.random.default_rng(0).integers(0, 255, (clips, det.frames, det.size, det.size, 3)).astype(np.uint8)
    t = timed(lambda: det.logits(x), repeats)
    print(
        f"temporal detector ({det.frames} x {det.size} px clips), onnxruntime: {clips / t:.1f} clips/s = "
        f"{clips * det.frames / t:.1f} face crops/s (floor 40)"
    )


def evaluate_benchmark(det: Any, videos: Path, jobs: int, repeats: int) -> None:
    """`deepshield evaluate` of real videos with faces found in `jobs` worker processes, beside one process.

    A throw-away real/ + fake/ folder of links to the corpus's first 12 videos (the labels only make both
    classes present). Each run starts with an empty crop cache, so every video is decoded and searched.
    """
    from deepshield.detect.training.datasets import discover
    from deepshield.detect.training.evaluate import evaluate

    files = sorted(videos.glob("*.mp4"))[:12]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "set"
        for i, f in enumerate(files):
            link = root / ("real" if i % 2 else "fake") / f.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f)
        dataset = discover(root)
        reports: dict[int, list[Any]] = {}

        def run(n: int) -> Callable[[], None]:
            def go() -> None:
                with tempfile.TemporaryDirectory() as cache:
                    rep = evaluate(dataset, det, frames=32, n_boot=10, crop_cache=Path(cache), jobs=n)
                reports[n] = [i["video_score"] for i in rep["items"]]

            return go

        # No warm-up: each run starts its own worker processes and cache anyway, so no run is colder than the rest.
        t_one, t_jobs = timed_alternately([run(1), run(jobs)], repeats, warm_up=False)
    same = "the same scores" if reports[1] == reports[jobs] else "DIFFERENT scores"
    print(
        f"evaluate of {len(files)} real videos, 32 frames: {jobs} worker processes {t_jobs:.1f} s; "
        f"baseline one process {t_one:.1f} s ({t_one / t_jobs:.2f}x), {same}, median of {repeats}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crops", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint", type=Path, default=None, help="torch checkpoint for the eager baseline")
    ap.add_argument("--scores", type=Path, action="append", default=[], help="scores.json from evaluate")
    ap.add_argument("--video", type=Path, default=None, help="video for the scan timing (default lp_d13)")
    ap.add_argument("--skip-scan", action="store_true")
    ap.add_argument("--skip-evaluate", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for the evaluate timing")
    ap.add_argument("--eval-repeats", type=int, default=3)
    a = ap.parse_args()
    det = load_sbi_detector()
    if det is None:
        sys.exit("no detector weights installed (src/deepshield/models/sbi_small.onnx)")
    size = det.meta.input_size
    crops = real_crops(a.crops, size, det.meta.margin)
    source = "real aligned faces (LFW)"
    if crops is None:
        crops = np.random.default_rng(0).integers(0, 255, (a.crops, size, size, 3)).astype(np.uint8)
        source = "random pixels"
    print(
        f"{len(crops)} crops of {size}x{size} ({source}), batch {a.batch}, {a.threads} threads, median of {a.repeats}"
    )
    t_ort = timed(lambda: det.logits(crops, batch=a.batch), a.repeats)
    ort_rate = len(crops) / t_ort
    t1 = timed(lambda: [det.logits(crops[i : i + 1]) for i in range(min(64, len(crops)))], a.repeats)
    print(
        f"onnxruntime      : {ort_rate:8.1f} crops/s (batch {a.batch}); {min(64, len(crops)) / t1:8.1f} "
        f"crops/s one at a time"
    )
    try:
        import torch

        from deepshield.detect.training.checkpoint import load_checkpoint
        from deepshield.detect.training.model import build_model
    except ModuleNotFoundError:
        print("torch eager      : skipped (torch not installed)")
    else:
        torch.set_num_threads(a.threads)
        model = build_model(det.meta.raw["config"]["model"], start=False)
        if a.checkpoint and a.checkpoint.is_file():
            model.load_state_dict(load_checkpoint(a.checkpoint, need=("model",))["model"])
        model.eval()
        mean = np.array(det.meta.mean, np.float32)
        std = np.array(det.meta.std, np.float32)
        x_all = torch.from_numpy(((crops.astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2).copy())

        def run_torch() -> None:
            with torch.inference_mode():
                for i in range(0, len(x_all), a.batch):
                    model(x_all[i : i + a.batch])

        t_torch = timed(run_torch, a.repeats)
        torch_rate = len(crops) / t_torch
        print(f"torch eager      : {torch_rate:8.1f} crops/s (batch {a.batch})")
        print(f"ratio ort / torch: {ort_rate / torch_rate:8.2f}x")
    target = 40.0
    print(f"target >= {target:.0f} crops/s on onnxruntime: {'met' if ort_rate >= target else 'NOT met'}")
    temporal_benchmark(a.repeats)
    video = a.video or faces_dir() / "real_videos" / "lp_d13.mp4"
    if video.is_file() and not a.skip_scan:
        scan_benchmark(video, a.repeats)
    if (faces_dir() / "real_videos").is_dir() and not a.skip_evaluate:
        evaluate_benchmark(det, faces_dir() / "real_videos", a.jobs, a.eval_repeats)
    for sp in a.scores:
        rep = json.loads(sp.read_text())
        for level in ("video", "frame"):
            m = rep["all"].get(level)
            if m and "auc" in m:
                lo, hi = m.get("auc_ci95", [float("nan")] * 2)
                print(
                    f"{sp.parent.name} {level}-level AUC {m['auc']:.4f} [{lo:.3f}, {hi:.3f}], "
                    f"FPR@thr {m.get('fpr_at_threshold', float('nan')):.3f}, "
                    f"TPR@thr {m.get('tpr_at_threshold', float('nan')):.3f}"
                )


if __name__ == "__main__":
    main()
