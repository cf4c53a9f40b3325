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


@pytest.fixture(scope="module")
def marked_photo(shared_faces: Path) -> tuple[np.ndarray, int]:
    """One shared photo, brought to about 600 px and watermarked (embedded once for the geometry tests)."""
    im = Image.open(shared_faces / "real_photos" / "df_img11.jpg").convert("RGB")
    im = im.resize((im.width * 600 // min(im.size), im.height * 600 // min(im.size)), Image.Resampling.LANCZOS)
    payload = payload_for("geometry")
    return TileWatermark().embed(np.array(im), payload), payload


def _rotate(a: np.ndarray, degrees: float) -> np.ndarray:
    h, w = a.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


@pytest.mark.parametrize(
    "name",
    ["flip_h", "flip_v", "rotate_90", "rotate_180", "rotate_270", "rotate_+2deg", "rotate_-2deg", "flip_rotate_1deg"],
)
def test_flips_and_turns_are_found(marked_photo: tuple[np.ndarray, int], name: str) -> None:
    marked, payload = marked_photo
    attacked = {
        "flip_h": lambda a: a[:, ::-1],
        "flip_v": lambda a: a[::-1],
        "rotate_90": lambda a: np.rot90(a, 1),
        "rotate_180": lambda a: np.rot90(a, 2),
        "rotate_270": lambda a: np.rot90(a, 3),
        "rotate_+2deg": lambda a: _rotate(a, 2.0),
        "rotate_-2deg": lambda a: _rotate(a, -2.0),
        "flip_rotate_1deg": lambda a: _rotate(np.ascontiguousarray(a[:, ::-1]), 1.0),
    }[name](marked)
    d = TileWatermark().detect(np.ascontiguousarray(attacked))
    assert d.detected and d.payload == payload
    if "deg" in name:
        assert 0.5 <= abs(d.angle) <= 2.5


def test_letterboxed_photo_is_found(shared_faces: Path) -> None:
    """A landscape photo shown in a square frame (bars above and below): the content's working scale
    shrinks by the aspect ratio (here 418/740 = 0.565), beyond the old 0.7 bound of the scale search."""
    img = np.array(Image.open(shared_faces / "real_photos" / "df_img16.jpg").convert("RGB"))
    payload = payload_for("letterbox")
    marked = TileWatermark().embed(img, payload)
    h, w = marked.shape[:2]
    top = (w - h) // 3
    framed = cv2.copyMakeBorder(marked, top, w - h - top, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    d = TileWatermark().detect(framed)
    assert d.detected and d.payload == payload
    assert abs(d.scale - h / w) < 0.01


def _halve_jpeg50(marked: np.ndarray) -> np.ndarray:
    small = cv2.resize(marked, (marked.shape[1] // 2, marked.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return _jpeg(small, 50)


def test_small_face_halved_and_jpeg_q50(shared_faces: Path) -> None:
    """A 250 px face gets the small-image variant (256 px working side, 35 dB): halved to 125 px and saved
    at JPEG q50 its mark is still read, and unattacked at its own size too."""
    face = np.array(Image.open(sorted((shared_faces / "lfw_1000").glob("*.jpg"))[0]).convert("RGB"))
    payload = payload_for("face")
    marked = TileWatermark().embed(face, payload)
    assert 34.5 <= psnr(face, marked) <= 36.0
    assert TileWatermark().detect(marked).payload == payload
    d = TileWatermark().detect(_halve_jpeg50(marked))
    assert d.detected and d.payload == payload


def test_small_faces_halved_and_jpeg_q50_rate(shared_faces: Path) -> None:
    """Issue 33 point 7's target: >= 0.95 of 250 px faces read after 0.5x + JPEG q50 (20 LFW faces here; the
    benchmark's face250_0.5x_q50 row measures 40 others)."""
    wm = TileWatermark()
    paths = sorted((shared_faces / "lfw_1000").glob("*.jpg"))[1:21]
    hits = 0
    for i, p in enumerate(paths):
        face = np.array(Image.open(p).convert("RGB"))
        hits += wm.detect(_halve_jpeg50(wm.embed(face, payload_for(str(i))))).payload == payload_for(str(i))
    assert hits / len(paths) >= 0.95


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
