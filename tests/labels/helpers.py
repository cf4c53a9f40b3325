"""Generated test media for the labels tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np


def natural_image(h: int = 384, w: int = 512, seed: int = 0) -> np.ndarray:
    """A photo-like test image (1/f noise texture plus shapes) when the shared corpus is not needed."""
    rng = np.random.default_rng(seed)
    f = np.fft.fft2(rng.normal(size=(h, w)))
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    g = np.real(np.fft.ifft2(f / (np.hypot(fy, fx) + 2e-3)))
    g = (g - g.min()) / (np.ptp(g) + 1e-9)
    rgb = np.stack([g * 200 + 30, g * 160 + 50, (1 - g) * 180 + 40], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def ffprobe_json(path: Path, entries: str) -> dict[str, Any]:
    """What ffprobe reads of `path` (`-show_entries entries`): the independent decoder's view of a labelled file."""
    cmd = ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout)
