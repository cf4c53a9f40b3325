"""Stored and shared PDQ hashes are python-threatexchange's, bit for bit, on every shared photo.

`deepshield hash` (the real CLI, one process for all files) against `threatexchange.signal_type.pdq.pdq_hasher`
(python-threatexchange 1.2.17 with pdqhash 0.2.8, a dev dependency), and the lookup fast path kept apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepshield.matching.bits import hamming
from deepshield.matching.signals.pdq import PdqSignal, takes_fast_path
from deepshield.media import open_media

pdq_hasher = pytest.importorskip(
    "threatexchange.signal_type.pdq.pdq_hasher", reason="python-threatexchange not installed (pip install -e .[dev])"
)

PHOTO_DIRS = ("real_photos", "more_photos", "paintings", "uncertain")
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@pytest.fixture(scope="module")
def shared_photos(faces: Path) -> list[Path]:
    return sorted(
        p for d in PHOTO_DIRS if (faces / d).is_dir() for p in (faces / d).iterdir() if p.suffix.lower() in SUFFIXES
    )


def test_cli_hash_equals_threatexchange_on_every_shared_photo(shared_photos: list[Path], tmp_path: Path) -> None:
    res = subprocess.run(
        [str(Path(sys.executable).parent / "deepshield"), "hash", "--types", "pdq", *map(str, shared_photos)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "DEEPSHIELD_HOME": str(tmp_path)},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    ours = {Path(r["file"]).name: (r["pdq"], r["quality"]["pdq"]) for r in map(json.loads, res.stdout.splitlines())}
    assert len(ours) == len(shared_photos) >= 200
    differ = []
    for f in shared_photos:
        ref_hex, ref_quality = pdq_hasher.pdq_from_file(f)
        if ours[f.name] != (ref_hex, ref_quality):
            differ.append((f.name, hamming(ours[f.name][0], ref_hex)))
    assert differ == []


def test_lookup_fast_path_is_marked_and_close(shared_photos: list[Path]) -> None:
    """Large JPEGs are looked up from a half-scale decode: the lookup says so, and stays within 10 bits."""
    sig = PdqSignal()
    fast = [f for f in shared_photos if takes_fast_path(open_media(f))]
    assert len(fast) >= 5  # the shared set has large JPEGs, so this tests something
    for f in fast[:12]:
        media = open_media(f)
        looked_up, variants = sig.lookup_hash(media)
        ref_hex, _ = pdq_hasher.pdq_from_file(f)
        assert looked_up.approximate and variants[0] == looked_up.value
        assert hamming(looked_up.value, ref_hex) <= 10
        stored = sig.hash_media(media)
        assert stored.value == ref_hex and not stored.approximate


def _crafted(tmp_path: Path) -> list[Path]:
    """Files the shared photos lack: an EXIF-turned JPEG, transparency, a palette, grey, CMYK."""
    from PIL import Image

    rng = np.random.default_rng(7)
    base = np.kron(rng.integers(0, 256, (24, 32, 4), dtype=np.uint8), np.ones((12, 12, 1), dtype=np.uint8))
    base[:, : base.shape[1] // 2, 3] = 0  # left half fully transparent
    rgb = Image.fromarray(np.ascontiguousarray(base[:, :, :3]))
    exif = rgb.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees to display"
    rgb.save(tmp_path / "turned.jpg", exif=exif.tobytes())
    out = [tmp_path / "turned.jpg"]
    for name, im in (
        ("alpha.png", Image.fromarray(base, "RGBA")),
        ("palette.png", rgb.quantize(64)),
        ("grey.jpg", rgb.convert("L")),
        ("cmyk.jpg", rgb.convert("CMYK")),
    ):
        im.save(tmp_path / name)
        out.append(tmp_path / name)
    return out


def test_orientation_alpha_palette_grey_cmyk_read_as_the_reference_does(tmp_path: Path) -> None:
    sig = PdqSignal()
    for f in _crafted(tmp_path):
        ours = sig.hash_media(open_media(f))
        ref_hex, ref_quality = pdq_hasher.pdq_from_file(f)
        assert (f.name, ours.value, ours.quality) == (f.name, ref_hex, ref_quality)
