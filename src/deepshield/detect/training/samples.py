"""A PNG grid of training pairs (self-blended, or blended from another identity when the config's `cross_prob`
asks for it), so a person can see what the model learns from."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from deepshield.detect.training.facecache import CachedFaces
from deepshield.detect.training.pairs import TrainingPairs
from deepshield.detect.training.sbi import SbiParams


def sample_grid(faces: CachedFaces, params: SbiParams, n: int = 8, seed: int = 0) -> np.ndarray:
    """Rows of [real | blended fake | blend mask | |fake - real| x4], RGB uint8: the training stream's own pairs."""
    ds = TrainingPairs(faces, params, seed=seed)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(faces), size=min(n, len(faces)), replace=False)
    rows = []
    for i in idx:
        real, fake, mask = ds.pair(int(i))
        m = (np.clip(mask, 0, 1) * 255).astype(np.uint8)
        diff = np.clip(np.abs(fake.astype(np.int16) - real.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
        rows.append(np.concatenate([real, fake, np.dstack([m, m, m]), diff], axis=1))
    grid = np.concatenate(rows, axis=0)
    header = np.full((24, grid.shape[1], 3), 255, np.uint8)
    s = params.input_size
    for k, t in enumerate(("real", "blended", "mask", "|diff| x4")):
        cv2.putText(header, t, (k * s + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, grid], axis=0)


def write_sample_grid(faces: CachedFaces, params: SbiParams, out: Path, n: int = 8, seed: int = 0) -> Path:
    grid = sample_grid(faces, params, n, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), grid[..., ::-1])
    return out
