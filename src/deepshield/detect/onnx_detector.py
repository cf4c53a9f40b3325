"""The shipped detector: the self-blend-trained compact network run by onnxruntime on aligned face crops.

Weights and metadata live in `deepshield/models/` (package data): `sbi_small.onnx` plus `sbi_small.json`
holding the input size, crop margin, normalisation, the Platt calibration fitted on validation identities
(so the score reads as a probability) and the default decision threshold. The factory declines (returns
None) when the weights are absent, so the rest of the system runs without a detector.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from deepshield.config import DETECT_THREADS, ORT_SPIN
from deepshield.detect.base import Detector, DetectorInfo, FaceEvidence, FaceScore
from deepshield.detect.registry import register_detector
from deepshield.faces import Face, align_face

MODEL_NAME = "sbi_small"


def models_dir() -> Path:
    """Where the shipped weights live (DEEPSHIELD_MODELS_DIR overrides, for tests and experiments)."""
    override = os.environ.get("DEEPSHIELD_MODELS_DIR")
    if override:
        return Path(override)
    return Path(str(resources.files("deepshield") / "models"))


@dataclass(frozen=True)
class ModelMeta:
    name: str
    version: str
    input_size: int
    margin: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    platt_a: float
    platt_b: float
    threshold: float
    raw: dict[str, Any]
    #: Still photos' threshold where calibrated apart (`calibrate --photo-scores`); None: `threshold`.
    photo_threshold: float | None = None
    #: Average the logits of each crop and its mirror image (set at export when validation shows it helps).
    flip_average: bool = False

    @staticmethod
    def load(path: Path) -> ModelMeta:
        d = json.loads(path.read_text())
        cal = d.get("calibration", {})
        return ModelMeta(
            name=d.get("name", MODEL_NAME),
            version=str(d.get("version", "0")),
            input_size=int(d["input_size"]),
            margin=float(d.get("margin", 0.25)),
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            platt_a=float(cal.get("a", 1.0)),
            platt_b=float(cal.get("b", 0.0)),
            threshold=float(d.get("threshold", 0.5)),
            raw=d,
            flip_average=bool(d.get("flip_average", False)),
            photo_threshold=float(d["photo_threshold"]) if d.get("photo_threshold") is not None else None,
        )


def calibrate(logits: np.ndarray, a: float, b: float) -> np.ndarray:
    z = np.clip(a * np.asarray(logits, np.float64) + b, -40, 40)
    return 1.0 / (1.0 + np.exp(-z))


def cpu_session_options(threads: int | None = None) -> Any:
    """onnxruntime options for the detectors: `threads` intra-op threads (`DEEPSHIELD_DETECT_THREADS`, 2), and
    no spin-waiting between calls. Spinning threads hold a core for a while after each call; a scan runs face
    finding, decoding and the temporal windows in other threads beside them, so on 2 cores that time is lost to
    them (`lp_d13` scan: 2.81 s spinning, 2.05 s not, same scores; `DEEPSHIELD_ORT_SPIN=1` turns it back on)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or DETECT_THREADS.get()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    spin = "1" if ORT_SPIN.get() else "0"
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    return opts


class CropModel:
    """An ONNX model that reads N x 3 x S x S normalised face crops and gives one logit each: the runner both the
    face-forgery detector and the liveness warped-turn detector (`liveness/warp.py`) use."""

    def __init__(
        self, onnx_path: Path, mean: tuple[float, float, float], std: tuple[float, float, float], threads: int | None
    ) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(
            str(onnx_path), cpu_session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self._mean = np.array(mean, np.float32)
        self._std = np.array(std, np.float32)
        self._lock = threading.Lock()  # one run at a time: a session is shared by the service's threads

    def logits(self, crops: np.ndarray, batch: int = 32) -> np.ndarray:
        """N x S x S x 3 uint8 RGB crops -> N float32 logits, in batches."""
        out = []
        for i in range(0, len(crops), batch):
            x = (crops[i : i + batch].astype(np.float32) / 255.0 - self._mean) / self._std
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            with self._lock:
                out.append(self.session.run(None, {self.input_name: x})[0].reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, np.float32)


class OnnxSbiDetector(Detector):
    """Scores aligned face crops; optional occlusion-sensitivity heat maps as evidence."""

    def __init__(self, onnx_path: Path, meta: ModelMeta, threads: int | None = None) -> None:
        self.model = CropModel(onnx_path, meta.mean, meta.std, threads)
        self.meta = meta
        self.info = DetectorInfo(
            name="sbi",
            version=meta.version,
            threshold=meta.threshold,
            photo_threshold=meta.photo_threshold,
            input_size=meta.input_size,
            description="Compact CNN trained by self-blending on real faces only; calibrated probability.",
        )

    # -- raw model access (used by evaluation and benchmarks) --
    def crops(self, rgb: np.ndarray, faces: list[Face]) -> list[np.ndarray]:
        return [align_face(rgb, f, size=self.meta.input_size, margin=self.meta.margin).image for f in faces]

    def logits(self, crops: np.ndarray, batch: int = 32) -> np.ndarray:
        """N x S x S x 3 uint8 RGB crops -> raw logits (mirror-averaged when the model asks for it)."""
        if self.meta.flip_average and len(crops):
            both = self.model.logits(np.concatenate([crops, crops[:, :, ::-1]]), batch)
            return (both[: len(crops)] + both[len(crops) :]) / 2
        return self.model.logits(crops, batch)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        return calibrate(self.logits(crops), self.meta.platt_a, self.meta.platt_b)

    def occlusion_heatmap(self, crop: np.ndarray, patch_frac: float = 1 / 3, stride_frac: float = 1 / 6) -> np.ndarray:
        """How much hiding each region lowers the fake logit: HxW float in [0, 1], crop space."""
        s = crop.shape[0]
        p, st = max(4, int(s * patch_frac)), max(2, int(s * stride_frac))
        starts = list(range(0, s - p + 1, st))
        fill = crop.reshape(-1, 3).mean(axis=0).astype(np.uint8)
        batch = []
        for y in starts:
            for x in starts:
                c = crop.copy()
                c[y : y + p, x : x + p] = fill
                batch.append(c)
        base = float(self.logits(crop[None])[0])
        occl = self.logits(np.stack(batch))
        heat = np.zeros((s, s), np.float32)
        count = np.zeros((s, s), np.float32)
        k = 0
        for y in starts:
            for x in starts:
                heat[y : y + p, x : x + p] += max(0.0, base - float(occl[k]))
                count[y : y + p, x : x + p] += 1
                k += 1
        heat /= np.maximum(count, 1)
        heat = np.asarray(cv2.GaussianBlur(heat, (0, 0), s / 32), np.float32)
        peak = float(heat.max())
        return heat / peak if peak > 0 else heat

    def score_faces(self, rgb: np.ndarray, faces: list[Face], explain: bool = False) -> list[FaceScore]:
        if not faces:
            return []
        crops = self.crops(rgb, faces)
        probs = self.probabilities(np.stack(crops))
        out = []
        for crop, p in zip(crops, probs, strict=True):
            ev: FaceEvidence = {}
            if explain:
                ev = {"heatmap": self.occlusion_heatmap(crop), "crop": crop}
            out.append(FaceScore(score=float(p), evidence=ev))
        return out


_CACHE: dict[str, OnnxSbiDetector] = {}
_CACHE_LOCK = threading.Lock()


def load_sbi_detector(directory: Path | None = None) -> OnnxSbiDetector | None:
    """The shipped detector, or None when its weights are not installed. Loaded once per directory."""
    d = directory or models_dir()
    onnx_path, meta_path = d / f"{MODEL_NAME}.onnx", d / f"{MODEL_NAME}.json"
    if not (onnx_path.is_file() and meta_path.is_file()):
        return None
    key = str(d.resolve())
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = OnnxSbiDetector(onnx_path, ModelMeta.load(meta_path))
        return _CACHE[key]


register_detector("sbi", load_sbi_detector)
