"""The warped-turn detector (issue 32 point 4): does a turned face show real 3-D turning, or a frontal face bent
by a 2.5-D warp (mesh points rotated with their depth over a fixed ring, one affine per triangle)?

A warp cannot show what the frontal frame never saw: the near cheek is stretched from a foreshortened patch,
the ear and jaw line that a real turn uncovers are missing, and the ring around the face bends with it. Those
are texture cues, so the model is ImageNet MobileNetV2's mid-level features (frozen, pooled) with a logistic head,
trained by
`deepshield liveness train-warp` on real turned photos against warps of real frontal ones
(`liveness/attacks/warp_training.py`, card in models/MODEL_CARD_warp.md).

Weights ship as `deepshield/models/warp_turn.onnx` with `warp_turn.json` (crop, normalisation, thresholds, the
ONNX file's sha256, checked before loading). Only faces turned at least `min_yaw_deg` are scored: on a frontal
face there is no warp to see, and the model never saw one.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepshield.detect.onnx_detector import CropModel, calibrate, models_dir
from deepshield.errors import DeepshieldError
from deepshield.faces import Face, align_face
from deepshield.filehash import sha256_file

MODEL_NAME = "warp_turn"


@dataclass(frozen=True)
class WarpModelMeta:
    version: str
    input_size: int
    margin: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: Faces turned less than this (|yaw|, degrees) are not scored.
    min_yaw_deg: float
    onnx_sha256: str
    raw: dict[str, Any]

    @staticmethod
    def load(path: Path) -> WarpModelMeta:
        try:
            d = json.loads(path.read_text())
            return WarpModelMeta(
                version=str(d["version"]),
                input_size=int(d["input_size"]),
                margin=float(d["margin"]),
                mean=tuple(float(v) for v in d["mean"]),  # type: ignore[arg-type]
                std=tuple(float(v) for v in d["std"]),  # type: ignore[arg-type]
                min_yaw_deg=float(d["min_yaw_deg"]),
                onnx_sha256=str(d["onnx_sha256"]),
                raw=d,
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DeepshieldError(f"{path}: not a warped-turn model description ({e})") from e


class WarpDetector:
    """Probability that a turned face is a 2.5-D warp of a frontal one; crops and scores apart, so an analysis
    cache can keep the crops and re-score them."""

    def __init__(self, onnx_path: Path, meta: WarpModelMeta, threads: int | None = None) -> None:
        digest = sha256_file(onnx_path)
        if digest != meta.onnx_sha256:
            raise DeepshieldError(
                f"{onnx_path} is not the warped-turn model its description names: sha256 {digest}, "
                f"want {meta.onnx_sha256}"
            )
        self.model = CropModel(onnx_path, meta.mean, meta.std, threads)
        self.onnx_path = onnx_path
        self.meta = meta
        self.name = f"{MODEL_NAME}-{meta.version}"

    def wants(self, yaw: float | None) -> bool:
        return yaw is not None and abs(yaw) >= self.meta.min_yaw_deg

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return align_face(rgb, face, size=self.meta.input_size, margin=self.meta.margin).image

    def probabilities(self, crops: np.ndarray, batch: int = 32) -> np.ndarray:
        """N x S x S x 3 uint8 RGB crops -> probabilities of a warp (mean logit of each crop and its mirror:
        the model was fitted on both, and a mirror is no less a warp)."""
        if not len(crops):
            return np.zeros(0, np.float64)
        z = self.model.logits(np.concatenate([crops, crops[:, :, ::-1]]), batch).astype(np.float64)
        z = (z[: len(crops)] + z[len(crops) :]) / 2
        return calibrate(z, 1.0, 0.0)  # the logistic head is the probability; no calibration on top

    def score(self, rgb: np.ndarray, face: Face) -> float:
        return float(self.probabilities(self.crop(rgb, face)[None])[0])


def load_warp_detector(directory: Path | None = None) -> WarpDetector | None:
    """The warped-turn model in `directory` (the shipped models by default); None when it is not installed, a
    clear error when its files are there but do not agree."""
    d = directory or models_dir()
    onnx_path, meta_path = d / f"{MODEL_NAME}.onnx", d / f"{MODEL_NAME}.json"
    if not (onnx_path.is_file() and meta_path.is_file()):
        return None
    return WarpDetector(onnx_path, WarpModelMeta.load(meta_path))


_CACHE: dict[str, WarpDetector | None] = {}
_CACHE_LOCK = threading.Lock()


def get_warp_detector() -> WarpDetector | None:
    """The installed warped-turn detector, loaded once per models folder (`DEEPSHIELD_MODELS_DIR` is read on
    every call, as the face-forgery detector's loader reads it)."""
    d = models_dir()
    key = str(d.resolve())
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = load_warp_detector(d)
        return _CACHE[key]
