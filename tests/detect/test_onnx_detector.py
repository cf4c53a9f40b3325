"""The shipped ONNX detector behind the `Detector` interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepshield.detect import available_detectors, get_detector
from deepshield.detect.onnx_detector import calibrate, load_sbi_detector, models_dir
from deepshield.faces import FaceAnalyzer
from deepshield.media import open_media
from tests.detect.conftest import PHOTOS


def test_factory_declines_without_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSHIELD_MODELS_DIR", str(tmp_path))
    assert "sbi" in available_detectors()
    assert load_sbi_detector() is None
    assert get_detector("sbi") is None


def test_shipped_weights_are_small_and_described() -> None:
    d = models_dir()
    onnx = d / "sbi_small.onnx"
    if not onnx.is_file():
        pytest.skip("no detector weights installed in deepshield/models")
    assert onnx.stat().st_size < 25e6
    det = load_sbi_detector()
    assert det is not None
    assert 0 < det.info.threshold < 1 and det.info.input_size == det.meta.input_size
    assert det.meta.raw["calibration"]["method"] != "none", "shipped weights must be calibrated"


def test_scores_and_heatmaps_on_a_real_photo(shared_faces: Path) -> None:
    det = get_detector("sbi")
    if det is None:
        pytest.skip("no detector weights installed in deepshield/models")
    rgb = next(iter(open_media(shared_faces / PHOTOS[0]).frames())).rgb
    with FaceAnalyzer() as fa:
        faces = fa.analyze(rgb)
    assert faces
    plain = det.score_faces(rgb, faces)
    explained = det.score_faces(rgb, faces, explain=True)
    s = det.info.input_size
    for a, b in zip(plain, explained, strict=True):
        assert 0 <= a.score <= 1 and a.score == pytest.approx(b.score, abs=1e-6)
        assert a.evidence == {}
        hm, crop = b.evidence["heatmap"], b.evidence["crop"]
        assert hm.shape == (s, s) and crop.shape == (s, s, 3)
        assert np.isfinite(hm).all() and hm.min() >= 0 and hm.max() <= 1
    crops = np.stack(det.crops(rgb, faces))  # type: ignore[attr-defined]
    probs = calibrate(det.logits(crops), det.meta.platt_a, det.meta.platt_b)  # type: ignore[attr-defined]
    assert probs == pytest.approx([p.score for p in plain], abs=1e-6)
