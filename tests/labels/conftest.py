"""Fixtures for the labels tests: keys in a temporary DEEPSHIELD_HOME and small generated media."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.labels.helpers import natural_image


@pytest.fixture()
def keys_home(ds_home: Path) -> Path:
    from deepshield.labels.keys import init_keys

    init_keys(ds_home)
    return ds_home


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """JPEG/PNG/WebP (lossy and lossless), WAV, MP3 and an MP4 with audio, generated for the tests."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg absent (scripts/apt-packages.txt)")
    d = tmp_path_factory.mktemp("labelmedia")
    im = Image.fromarray(natural_image())
    im.save(d / "a.jpg", quality=92)
    im.save(d / "a.png")
    im.save(d / "a.webp", quality=90)
    im.save(d / "lossless.webp", lossless=True)

    def run(*args: str) -> None:
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)

    run("-f", "lavfi", "-i", "sine=frequency=330:sample_rate=16000", "-t", "1.5", str(d / "a.wav"))
    run("-f", "lavfi", "-i", "sine=frequency=330", "-t", "1.5", "-metadata", "title=tune", str(d / "a.mp3"))
    # fmt: off
    run("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=12", "-f", "lavfi", "-i", "sine=frequency=500",
        "-t", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(d / "v.mp4"))
    # fmt: on
    return d
