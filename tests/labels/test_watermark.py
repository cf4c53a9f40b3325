"""The project's own watermark: invisible, robust to the attacks that break the anchors, no false detections."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from deepshield.labels import ecc
from deepshield.labels.watermark import TileWatermark, payload_for, psnr
from tests.labels.helpers import natural_image


def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=q)
    return np.array(Image.open(buf).convert("RGB"))


def _photos(shared_faces: Path, n: int) -> list[np.ndarray]:
    out = []
    for p in sorted((shared_faces / "real_photos").glob("df_img*.jpg")):
        im = Image.open(p).convert("RGB")
        if min(im.size) >= 400:
            out.append(np.array(im))
        if len(out) == n:
            break
    return out


def test_ecc_corrects_noise_and_rejects_random_words() -> None:
    rng = np.random.default_rng(1)
    payload = int(rng.integers(0, 2**63))
    code = ecc.encode_payload(payload, 64, b"k")
    assert len(code) == ecc.coded_length(96)
    noisy = (1.0 - 2.0 * code) + rng.normal(0, 0.8, len(code))
    assert ecc.decode_payload(noisy, 64, b"k") == payload
    assert sum(ecc.decode_payload(rng.normal(0, 1, len(code)), 64, b"k") is not None for _ in range(200)) == 0


def test_payload_survives_attacks_on_real_photos(shared_faces: Path) -> None:
    wm = TileWatermark()
    rng = np.random.default_rng(5)
    for img in _photos(shared_faces, 2):
        payload = int(rng.integers(0, 2**62)) << 2 | 3  # uses the top bits too
        marked = wm.embed(img, payload)
        assert psnr(img, marked) >= 40.0
        h, w = marked.shape[:2]
        ch, cw = int(h * 0.9), int(w * 0.9)
        y, x = int(rng.integers(0, h - ch)), int(rng.integers(0, w - cw))
        bright = np.clip(marked.astype(np.float32) * 1.2, 0, 255).astype(np.uint8)
        attacked = {
            "jpeg50": _jpeg(marked, 50),
            "resize0.5": cv2.resize(marked, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
            "crop10": marked[y : y + ch, x : x + cw],
            "brightness+20": bright,
            "screenshot": cv2.resize(marked, (int(w * 0.7), int(h * 0.7)), interpolation=cv2.INTER_LINEAR),
        }
        for name, a in attacked.items():
            d = wm.detect(a)
            assert d.detected and d.payload == payload, name
            assert d.confidence > 0.6


def test_unmarked_images_are_not_detected(shared_faces: Path) -> None:
    wm = TileWatermark()
    imgs = _photos(shared_faces, 3) + [natural_image(300, 400, s) for s in range(3)]
    for img in imgs:
        d = wm.detect(img)
        assert not d.detected
        assert d.payload is None


def test_other_key_does_not_read_the_mark() -> None:
    img = natural_image()
    marked = TileWatermark().embed(img, payload_for("x"))
    assert TileWatermark().detect(marked).payload == payload_for("x")
    assert not TileWatermark(key="someone-else").detect(marked).detected


def test_rejects_bad_input() -> None:
    from deepshield.labels.watermark import WatermarkError

    with pytest.raises(WatermarkError):
        TileWatermark().embed(np.zeros((16, 16, 3), np.uint8), 1)
    with pytest.raises(WatermarkError):
        TileWatermark().embed(natural_image(), 2**64)
