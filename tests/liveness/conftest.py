"""Liveness fixtures: small generated videos (no face / a real face) written with the package's own writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def faceless_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of a moving grey gradient: a valid video with no face in it."""
    from deepshield.liveness.attacks.videoio import write_video

    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(60, 200, 160, dtype=np.float32)[None, :, None], (120, 1, 3))
    frames = [
        np.clip(np.roll(base, i, axis=1) + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8) for i in range(20)
    ]
    return write_video(tmp_path_factory.mktemp("vid") / "noface.mp4", frames, 10.0)
