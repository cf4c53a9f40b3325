"""The temporal detector at run time: runs of consecutive frames of one face, cropped with a geometry smoothed
over time, scored by an ONNX model that reads the whole run; and its fusion with the frame detector.

A temporal detector must see the face move, not the crop: aligning every frame on its own landmarks adds the
mesh's jitter to each frame, which is itself a temporal inconsistency that real and fake videos share. So the
crop geometry (centre, size, roll) of a face track is smoothed over time before cropping (`stable_crops`), the
same way for training (`detect.training.temporal.clips`) and for scanning (`score_windows`).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from deepshield.config import TEMPORAL
from deepshield.detect.onnx_detector import cpu_session_options
from deepshield.errors import DeepshieldError
from deepshield.faces.landmarks import FACE_OVAL, LEFT_EYE, RIGHT_EYE
from deepshield.media import FrameSampling

#: File names of a temporal model: `temporal.onnx` and its metadata `temporal.json`.
MODEL_NAME = "temporal"
#: Where the shipped temporal model lives.
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "models" / "temporal"

#: Cached crops: side and margin (fraction of the face extent on each side). Training and scoring both crop the
#: network's input out of these with `input_crop`, so both resample the same way.
CLIP_CACHE_SIZE = 128
CLIP_CACHE_MARGIN = 0.4
#: Gaussian smoothing of the crop geometry along a track, in frames.
SMOOTH_SIGMA = 1.5


@dataclass(frozen=True)
class WindowSampling(FrameSampling):
    """`windows` evenly spaced runs of `length` consecutive frames at `frame_rate`: what a temporal detector
    needs, served by `Media.frames` like any sampling (it seeks to the keyframe before each run)."""

    windows: int = 4
    length: int = 8
    frame_rate: float = 25.0

    def target_times(self, duration_s: float) -> list[float]:
        step = 1.0 / self.frame_rate
        span = self.length * step
        if duration_s <= span:
            starts = [0.0]
        else:
            n = max(1, self.windows)
            starts = [(i + 0.5) * (duration_s - span) / n for i in range(n)]
        # Aim at the middle of each frame interval so rounding never picks the same frame twice.
        return [s + (j + 0.5) * step for s in starts for j in range(self.length)][: self.max_frames]


def _geometry(landmarks: np.ndarray) -> np.ndarray:
    """(centre x, centre y, extent, roll in degrees) of one face, as `faces.align_face` measures them."""
    pts = landmarks[:, :2].astype(np.float64)
    re, le = pts[RIGHT_EYE].mean(axis=0), pts[LEFT_EYE].mean(axis=0)
    angle = float(np.degrees(np.arctan2(le[1] - re[1], le[0] - re[0])))
    oval = pts[FACE_OVAL]
    m = oval.mean(axis=0)
    rot = cv2.getRotationMatrix2D((0.0, 0.0), angle, 1.0)[:, :2]
    r = (oval - m) @ rot.T
    c_r = (r.min(axis=0) + r.max(axis=0)) / 2
    extent = float(max(np.ptp(r[:, 0]), np.ptp(r[:, 1])))
    c = m + rot.T @ c_r  # rotation matrices are orthogonal: back to frame pixels
    return np.array([c[0], c[1], extent, angle])


def smooth_geometry(geoms: np.ndarray, sigma: float = SMOOTH_SIGMA) -> np.ndarray:
    """Gaussian-weighted moving average of per-frame geometry along a track (edges renormalised)."""
    n = len(geoms)
    if n < 2 or sigma <= 0:
        return geoms.copy()
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    out = np.empty_like(geoms)
    for i in range(n):
        lo, hi = max(0, i - r), min(n, i + r + 1)
        w = k[lo - i + r : hi - i + r]
        out[i] = (geoms[lo:hi] * w[:, None]).sum(axis=0) / w.sum()
    return out


def crop_matrix(geom: np.ndarray, size: int, margin: float) -> np.ndarray:
    """2x3 affine from frame pixels to a `size` crop of the face described by `geom`, roll removed."""
    cx, cy, extent, angle = (float(v) for v in geom)
    rot = cv2.getRotationMatrix2D((0.0, 0.0), angle, 1.0)[:, :2]
    s = size / max(extent * (1 + 2 * margin), 4.0)
    m = np.zeros((2, 3), np.float64)
    m[:, :2] = s * rot
    m[:, 2] = size / 2 - s * rot @ np.array([cx, cy])
    return m


def stable_crops(
    frames: Sequence[np.ndarray],
    landmarks: Sequence[np.ndarray],
    size: int = CLIP_CACHE_SIZE,
    margin: float = CLIP_CACHE_MARGIN,
    sigma: float = SMOOTH_SIGMA,
) -> tuple[np.ndarray, np.ndarray]:
    """Crops (N x S x S x 3) and crop-space landmarks (N x 478 x 2) of one face across consecutive frames,
    with the crop geometry smoothed over time."""
    geoms = smooth_geometry(np.stack([_geometry(lm) for lm in landmarks]), sigma)
    crops, lms = [], []
    for rgb, lm, g in zip(frames, landmarks, geoms, strict=True):
        m = crop_matrix(g, size, margin)
        interp = cv2.INTER_AREA if m[0, 0] ** 2 + m[0, 1] ** 2 < 1 else cv2.INTER_LINEAR
        crops.append(cv2.warpAffine(rgb, m, (size, size), flags=interp, borderMode=cv2.BORDER_REFLECT101))
        pts = lm[:, :2].astype(np.float64) @ m[:, :2].T + m[:, 2]
        lms.append(pts.astype(np.float32))
    return np.stack(crops), np.stack(lms)


def input_crop(
    crops: np.ndarray, margin: float, size: int, shift: tuple[float, float] = (0.0, 0.0), flip: bool = False
) -> np.ndarray:
    """The network's input out of cached crops (K x S x S x 3, margin CLIP_CACHE_MARGIN): one affine for every
    frame, a margin of `margin`, `size` pixels, the centre moved by `shift` (fractions of the face extent)."""
    src = crops.shape[1]
    extent = src / (1 + 2 * CLIP_CACHE_MARGIN)
    s = size / (extent * (1 + 2 * margin))
    c = np.array([src / 2 + shift[0] * extent, src / 2 + shift[1] * extent])
    m = np.array([[s, 0, size / 2 - s * c[0]], [0, s, size / 2 - s * c[1]]], np.float64)
    out = np.stack(
        [cv2.warpAffine(f, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101) for f in crops]
    )
    return np.ascontiguousarray(out[:, :, ::-1]) if flip else out


class TemporalDetector:
    """Loads `temporal.onnx` + `temporal.json` from a folder (an export's `out_dir`)."""

    def __init__(self, directory: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        onnx_path, meta_path = directory / f"{MODEL_NAME}.onnx", directory / f"{MODEL_NAME}.json"
        if not (onnx_path.is_file() and meta_path.is_file()):
            raise DeepshieldError(f"no temporal model in {directory} (temporal.onnx and temporal.json)")
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text())
            self.frames = int(self.meta["frames"])
            self.size = int(self.meta["input_size"])
            self.margin = float(self.meta["margin"])
            self._mean = np.array(self.meta["mean"], np.float32)
            self._std = np.array(self.meta["std"], np.float32)
        except (ValueError, KeyError, TypeError) as e:
            raise DeepshieldError(f"{meta_path} is not a temporal model's metadata ({e})") from None
        self.name = str(self.meta.get("name", MODEL_NAME))
        self.version = str(self.meta.get("version", "?"))
        self.threshold = float(self.meta.get("threshold", 0.5))
        fusion = self.meta.get("fusion")
        self.fusion = Fusion.from_dict(fusion) if fusion else None
        # ORT_ENABLE_ALL in these options is also onnxruntime's default: only spinning differs from before.
        opts = cpu_session_options(threads)
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def inputs(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Cached-geometry clips (K x 128 x 128 x 3, `stable_crops`) -> B x K x S x S x 3 network crops."""
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


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class Fusion:
    """Fused probability = sigmoid(w_frame * logit(frame score) + w_temporal * logit(temporal score) + bias): a
    class-balanced logistic regression on the two detectors' video-level logits, fitted on labelled videos."""

    w_frame: float
    w_temporal: float
    bias: float
    threshold: float
    fitted_on: str = ""
    #: Whether the fused score (and the temporal score alone) may flag a file. False ships the scores for a
    #: reviewer to read while the verdict stays the frame detector's: the fusion did not hold out of sample.
    in_verdict: bool = False

    def probability(self, frame_score: float, temporal_score: float) -> float:
        z = self.w_frame * _logit(frame_score) + self.w_temporal * _logit(temporal_score) + self.bias
        return 1.0 / (1.0 + math.exp(-min(max(z, -40.0), 40.0)))

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Fusion:
        try:
            return Fusion(
                float(d["w_frame"]),
                float(d["w_temporal"]),
                float(d["bias"]),
                float(d["threshold"]),
                str(d.get("fitted_on", "")),
                bool(d.get("in_verdict", False)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DeepshieldError(f"the temporal model's fusion entry is incomplete ({e})") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "w_frame": round(self.w_frame, 5),
            "w_temporal": round(self.w_temporal, 5),
            "bias": round(self.bias, 5),
            "threshold": round(self.threshold, 4),
            "fitted_on": self.fitted_on,
            "in_verdict": self.in_verdict,
        }


def shipped_temporal() -> TemporalDetector | None:
    """The shipped temporal model, or None where it is not installed (`DEEPSHIELD_TEMPORAL=0` turns it off)."""
    if not TEMPORAL.get() or not (SHIPPED_DIR / f"{MODEL_NAME}.onnx").is_file():
        return None
    return TemporalDetector(SHIPPED_DIR)
