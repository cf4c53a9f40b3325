"""Fixtures for detector tests: real faces from the shared corpus (extracted once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepshield.detect.training.facecache import CachedFaces, build_cache, load_cache

# Different people (one LFW photo each) and one short real video.
PHOTOS = [
    "lfw_1000/cflfw_Aaron_Guiel_0001.jpg",
    "lfw_1000/cflfw_Abba_Eban_0001.jpg",
    "lfw_1000/cflfw_Aaron_Patterson_0001.jpg",
    "lfw_1000/cflfw_Abdulaziz_Kamilov_0001.jpg",
]
VIDEO = "real_videos/vr_face5.mp4"


@pytest.fixture(scope="session")
def face_cache(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny face cache: two photos train, two photos validation, the video's frames train."""
    out = tmp_path_factory.mktemp("facecache")
    items = [(shared_faces / rel, rel, rel, "train" if i < 2 else "val") for i, rel in enumerate(PHOTOS)]
    items.append((shared_faces / VIDEO, VIDEO, "vid", "train"))
    build_cache(items, out, frames_per_video=2)
    return out


@pytest.fixture(scope="session")
def train_faces(face_cache: Path) -> CachedFaces:
    faces = load_cache(face_cache, ["train"])
    assert len(faces) >= 3
    return faces


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(7)
