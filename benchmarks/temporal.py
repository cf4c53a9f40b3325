"""Temporal detector speed through onnxruntime: clips/s (and the face crops/s that makes) beside the shipped frame
detector's crops/s on the same machine in the same run, both on the same thread count; and the cost of finding the
faces of one video's windows of consecutive frames, which is what scan would add.

    PYTHONPATH=src python benchmarks/temporal.py --model DIR [--clips 64] [--threads 2] [--video real_videos/lp_d13]

Clips are random pixels (a fixed-size network's speed does not depend on content).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from corpus import faces_dir  # noqa: E402
from timing import timed_alternately  # noqa: E402

from deepshield.detect.onnx_detector import (  # noqa: E402
    ModelMeta,  # noqa: E402
    OnnxSbiDetector,
    models_dir,
)
from deepshield.detect.training.temporal.detector import TemporalDetector  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True, help="folder with temporal.onnx and temporal.json")
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--video", type=Path, default=None, help="video for the face-finding cost (default lp_d13)")
    a = ap.parse_args()
    det = TemporalDetector(a.model, threads=a.threads)
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 255, (a.clips, det.frames, det.size, det.size, 3)).astype(np.uint8)
    d = models_dir()
    frame = OnnxSbiDetector(d / "sbi_small.onnx", ModelMeta.load(d / "sbi_small.json"), threads=a.threads)
    s = frame.meta.input_size
    crops = rng.integers(0, 255, (a.clips * det.frames, s, s, 3)).astype(np.uint8)
    t_temporal, t_frame = timed_alternately(
        [lambda: det.logits(inputs, batch=a.batch), lambda: frame.logits(crops, batch=32)], a.repeats
    )
    print(f"{a.threads} threads, median of {a.repeats}, onnxruntime")
    print(
        f"temporal ({det.frames} x {det.size} px clips): {a.clips / t_temporal:7.1f} clips/s = "
        f"{a.clips * det.frames / t_temporal:7.1f} face crops/s"
    )
    print(f"frame detector v{frame.meta.version} ({s} px crops)  : {len(crops) / t_frame:7.1f} face crops/s (baseline)")
    video = a.video or faces_dir() / "real_videos" / "lp_d13.mp4"
    if video.is_file():
        from deepshield.detect.training.temporal.clips import video_clips
        from deepshield.faces import FaceAnalyzer

        with FaceAnalyzer() as fa:
            video_clips(fa, video, 1, det.frames)  # warm-up
            t0 = time.perf_counter()
            clips = [c for c, _ in video_clips(fa, video, 4, det.frames)]
            t_faces = time.perf_counter() - t0
            t0 = time.perf_counter()
            det.score_clips(clips)
            t_score = time.perf_counter() - t0
        print(
            f"{video.name}: 4 windows of {det.frames} frames: decode + faces + crops {t_faces:.2f} s, "
            f"scoring {t_score:.3f} s ({len(clips)} clips)"
        )


if __name__ == "__main__":
    main()
