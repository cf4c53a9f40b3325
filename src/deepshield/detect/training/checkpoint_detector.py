"""A training checkpoint scored as a detector, so `deepshield evaluate --checkpoint` can choose among a run's
epochs on a dev set without exporting each one to ONNX first.

It crops faces exactly as the shipped detector does (same input size and margin, taken from the checkpoint's
config), so a crop cache filled by one `evaluate` run serves every checkpoint after it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepshield.detect.base import Detector, DetectorInfo, FaceScore
from deepshield.detect.onnx_detector import ModelMeta, calibrate
from deepshield.faces import Face, align_face


class CheckpointDetector(Detector):
    """Raw sigmoid scores (no calibration) from a `deepshield train` checkpoint, through torch."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        import torch

        from deepshield.detect.training.checkpoint import load_checkpoint
        from deepshield.detect.training.model import build_model
        from deepshield.detect.training.sbi import MEAN, STD

        ck = load_checkpoint(path)
        cfg = ck["config"]
        self.model = build_model(cfg["model"], start=False)
        self.model.load_state_dict(ck["model"])
        self.model.eval()
        torch.set_num_threads(threads)
        sbi = cfg["sbi"]
        size = int(sbi.get("input_size", 160))
        margin = round((float(sbi.get("margin_min", 0.12)) + float(sbi.get("margin_max", 0.38))) / 2, 3)
        version = f"{path.parent.name}/{path.stem}"
        self.meta = ModelMeta("checkpoint", version, size, margin, tuple(MEAN), tuple(STD), 1.0, 0.0, 0.5, {})
        self.info = DetectorInfo("checkpoint", version, 0.5, size, f"training checkpoint {path}")

    def crops(self, rgb: np.ndarray, faces: list[Face]) -> list[np.ndarray]:
        return [align_face(rgb, f, size=self.meta.input_size, margin=self.meta.margin).image for f in faces]

    def logits(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
        from deepshield.detect.training.train import predict

        return predict(self.model, crops, batch)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        return calibrate(self.logits(crops), 1.0, 0.0)

    def score_faces(self, rgb: np.ndarray, faces: list[Face], explain: bool = False) -> list[FaceScore]:
        if not faces:
            return []
        probs = self.probabilities(np.stack(self.crops(rgb, faces)))
        return [FaceScore(score=float(p)) for p in probs]
