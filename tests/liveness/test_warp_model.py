"""The warped-turn detector (issue 32 point 4) on media it was not trained on: frames of the corpus' real videos
(the model saw photos only), one warped by the attacker's 2.5-D warp and real turned faces; its files checked
before loading; and `deepshield liveness train-warp` end to end on a slice of the corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deepshield.detect.onnx_detector import calibrate
from deepshield.errors import DeepshieldError
from deepshield.faces import FaceAnalyzer
from deepshield.liveness.attacks.crafted import warp_pose
from deepshield.liveness.attacks.videoio import read_clip
from deepshield.liveness.attacks.warp_training import main_face
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.warp import MODEL_NAME, get_warp_detector, load_warp_detector

POLICY = LivenessPolicy()


@pytest.fixture(scope="module")
def warp_model() -> object:
    det = get_warp_detector()
    assert det is not None, "the warped-turn model ships with the package"
    return det


def _frames(video: Path, seconds: float) -> list[np.ndarray]:
    """4 frames a second at the verifier's working size (640 px on the long side)."""
    frames, _ = read_clip(video, 0.0, seconds, fps=4.0, max_side=640)
    return frames


def test_a_warped_video_frame_fails_and_real_turns_do_not(shared_faces: Path, warp_model: object) -> None:
    """A frontal frame of a real talking-head video, turned 45 degrees by the crafted replay's warp, scores at the
    fail score; the real turned faces of the corpus' videos that the verifier would score stay under it."""
    from deepshield.liveness.warp import WarpDetector

    assert isinstance(warp_model, WarpDetector)
    fa = FaceAnalyzer(max_faces=4, tiled=False)
    try:
        frame = _frames(shared_faces / "real_videos" / "lp_d13.mp4", 0.5)[0]
        face = main_face(fa, frame)
        assert face is not None and face.pose is not None and face.landmarks is not None
        assert abs(face.pose.yaw) < 10
        for yaw in (-45.0, 45.0):
            warped, _ = warp_pose(frame, face.landmarks, yaw, 0.0)
            wf = main_face(fa, warped)
            assert wf is not None and warp_model.wants(wf.pose.yaw if wf.pose else None)
            assert warp_model.score(warped, wf) >= POLICY.warp_fail_score
        # The frontal face itself is not scored at all.
        assert not warp_model.wants(face.pose.yaw)
        real = []
        for frame in _frames(shared_faces / "real_videos" / "fp_street.mp4", 30.0):
            f = main_face(fa, frame)
            if f is not None and warp_model.wants(f.pose.yaw if f.pose else None):
                real.append(warp_model.score(frame, f))
    finally:
        fa.close()
    assert len(real) >= 3, "fp_street has turned faces"
    assert max(real) < POLICY.warp_fail_score, real


def test_the_model_files_are_checked_before_loading(
    tmp_path: Path, warp_model: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepshield.liveness.warp import WarpDetector

    assert isinstance(warp_model, WarpDetector)
    src = warp_model.onnx_path.parent
    assert (src / f"{MODEL_NAME}.json").is_file()
    assert load_warp_detector(tmp_path) is None  # not installed: no detector, no error
    monkeypatch.setenv("DEEPSHIELD_MODELS_DIR", str(tmp_path))  # read on every call, cached per folder
    assert get_warp_detector() is None
    monkeypatch.delenv("DEEPSHIELD_MODELS_DIR")
    assert get_warp_detector() is warp_model
    for f in (f"{MODEL_NAME}.onnx", f"{MODEL_NAME}.json"):
        shutil.copy(src / f, tmp_path / f)
    assert load_warp_detector(tmp_path) is not None
    onnx = tmp_path / f"{MODEL_NAME}.onnx"
    data = onnx.read_bytes()
    onnx.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(DeepshieldError, match="sha256"):
        load_warp_detector(tmp_path)
    onnx.write_bytes(data)
    meta = tmp_path / f"{MODEL_NAME}.json"
    meta.write_text("{not json")
    with pytest.raises(DeepshieldError, match="not a warped-turn model description"):
        load_warp_detector(tmp_path)
    meta.write_text(json.dumps({"version": "1"}))
    with pytest.raises(DeepshieldError, match="not a warped-turn model description"):
        load_warp_detector(tmp_path)


def test_train_warp_writes_a_model_the_verifier_loads(shared_faces: Path, tmp_path: Path) -> None:
    """On 150 LFW photos (no videos): a model whose description names its file's sha256, which the verifier
    loads and which ranks the warps above the real turns it was fitted on; a re-fit from the cache gives the same
    figures without analysing the photos again; a corpus without photos is a clear error."""
    from deepshield.cli.main import app
    from deepshield.liveness.attacks.warp_training import (
        fit_head,
        load_examples,
        mirrored_logits,
        tap_features,
    )

    faces = tmp_path / "faces"
    (faces / "lfw_1000").mkdir(parents=True)
    for p in sorted((shared_faces / "lfw_1000").glob("*.jpg"))[:150]:
        (faces / "lfw_1000" / p.name).symlink_to(p)
    out, examples = tmp_path / "model", tmp_path / "examples.npz"
    run = CliRunner().invoke
    r = run(app, ["liveness", "train-warp", "--faces", str(faces), "--out", str(out), "--cache", str(examples)])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / f"{MODEL_NAME}.json").read_text())
    photos = meta["training"]["photos"]
    assert photos["real"] >= 10 and photos["warps"] >= 50 and photos["auc"] > 0.8, photos
    assert "held_out_video_frames" not in meta["training"]
    det = load_warp_detector(out)
    assert det is not None and det.meta.onnx_sha256 == meta["onnx_sha256"]
    ex = load_examples(examples, ("photos",))["photos"]
    probs = det.probabilities(np.stack(ex.crops))
    y = np.asarray(ex.labels)
    assert probs[y == 1].mean() > probs[y == 0].mean() + 0.3
    # The exported graph computes what the training features and head compute (mirror-averaged).
    feats = tap_features(ex.crops)
    w, b = fit_head(feats, ex, np.arange(len(ex)), c=0.01)
    np.testing.assert_allclose(probs, calibrate(mirrored_logits(feats, w, b), 1.0, 0.0), atol=2e-3)
    r = run(app, ["liveness", "train-warp", "--faces", str(faces), "--out", str(out), "--cache", str(examples)])
    assert r.exit_code == 0, r.output
    assert json.loads((out / f"{MODEL_NAME}.json").read_text())["training"] == meta["training"]
    empty = tmp_path / "nothing"
    empty.mkdir()
    r = run(app, ["liveness", "train-warp", "--faces", str(empty), "--out", str(tmp_path / "m2")])
    assert isinstance(r.exception, DeepshieldError) and "no lfw_1000 folder" in str(r.exception)  # main(): exit 2
