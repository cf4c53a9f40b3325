"""The temporal detector at run time: clips of consecutive face crops through onnxruntime, one score per video.

Kept apart from the frame detector's `Detector` interface on purpose: it scores runs of frames of one face, not
single faces, and the scan pipeline does not call it yet (see docs/detect.md for how it should).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepshield.detect.training.temporal.clips import input_crop
from deepshield.detect.training.temporal.export import MODEL_NAME
from deepshield.errors import DeepshieldError


class TemporalDetector:
    """Loads `temporal.onnx` + `temporal.json` from a folder (an export's `out_dir`)."""

    def __init__(self, directory: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        onnx_path, meta_path = directory / f"{MODEL_NAME}.onnx", directory / f"{MODEL_NAME}.json"
        if not (onnx_path.is_file() and meta_path.is_file()):
            raise DeepshieldError(f"no temporal model in {directory} (temporal.onnx and temporal.json)")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.frames = int(self.meta["frames"])
        self.size = int(self.meta["input_size"])
        self.margin = float(self.meta["margin"])
        self.threshold = float(self.meta.get("threshold", 0.5))
        self._mean = np.array(self.meta["mean"], np.float32)
        self._std = np.array(self.meta["std"], np.float32)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or int(os.environ.get("DEEPSHIELD_DETECT_THREADS", "2"))
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def inputs(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Cached-geometry clips (K x 128 x 128 x 3, `clips.stable_crops`) -> B x K x S x S x 3 network crops."""
        for c in clips:
            if c.ndim != 4 or c.shape[0] != self.frames or c.shape[3] != 3:
                raise ValueError(f"a clip is {self.frames} x S x S x 3 uint8 crops, got shape {c.shape}")
        return np.stack([input_crop(c, self.margin, self.size) for c in clips])

    def logits(self, inputs: np.ndarray, batch: int = 8) -> np.ndarray:
        """B x K x S x S x 3 uint8 network crops -> B raw logits."""
        out = []
        for i in range(0, len(inputs), batch):
            x = (inputs[i : i + batch].astype(np.float32) / 255.0 - self._mean) / self._std
            x = np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3))
            with self._lock:
                out.append(self.session.run(None, {"clips": x})[0].reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def clip_scores(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Probability that each clip is manipulated (sigmoid of its logit; not calibrated on deepfakes)."""
        z = np.clip(self.logits(self.inputs(clips)).astype(np.float64), -40, 40)
        return 1.0 / (1.0 + np.exp(-z))

    def score_clips(self, clips: Sequence[np.ndarray]) -> float:
        """One video's score: the mean of its clips' probabilities, as the frame detector averages over frames.
        Raises ValueError for no clips: no temporal evidence is not evidence of a real video."""
        if not len(clips):
            raise ValueError("no clip to score")
        return float(self.clip_scores(clips).mean())
