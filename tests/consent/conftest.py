"""Fixtures for the consent tests: project keys in a temporary DEEPSHIELD_HOME, and a short real clip to label."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


@pytest.fixture()
def keys_home(ds_home: Path) -> Path:
    from deepshield.labels.keys import init_keys

    init_keys(ds_home)
    return ds_home


def avatar_clip(shared_faces: Path, name: str, out: Path) -> Path:
    """Two seconds of the corpus' real talking-head video `name`, 320 pixels wide, H.264 with its sound, at `out`
    (the digital human's output stands in for it); skips when ffmpeg is absent."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg absent (scripts/apt-packages.txt)")
    src = shared_faces / "real_videos" / name
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", "2", "-vf", "scale=320:-2", "-c:v",
                    "libx264", "-c:a", "aac", str(out)], check=True, timeout=120)  # fmt: skip
    return out
