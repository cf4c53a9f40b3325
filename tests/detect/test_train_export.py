"""Training (tiny config), resume, determinism, ONNX export and calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli import run_cli

torch = pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")


def _cfg(cache: Path, out: Path, epochs: int) -> dict:
    return {
        "data": {"cache_dir": str(cache), "max_frames_per_video": 2},
        "model": {"widths": [8, 8, 16, 16], "blocks": [1, 1, 1, 1], "stem": 8, "dropout": 0.0},
        "sbi": {"input_size": 64},
        "train": {
            "seed": 5,
            "epochs": epochs,
            "batch_pairs": 2,
            "lr": 0.003,
            "warmup_steps": 2,
            "num_workers": 0,
            "threads": 1,
            "out_dir": str(out),
        },
    }


def test_train_resume_deterministic_and_export(face_cache: Path, tmp_path: Path) -> None:
    from deepshield.detect.onnx_detector import load_sbi_detector
    from deepshield.detect.training.export import export_onnx
    from deepshield.detect.training.train import train

    run = tmp_path / "run"
    train(_cfg(face_cache, run, 1), run, progress=False)
    rec2 = train(_cfg(face_cache, run, 2), run, progress=False)  # resumes at epoch 2
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2] and rec2["epoch"] == 2
    assert all(0.0 <= x["val_sbi_auc"] <= 1.0 and x["train_loss"] > 0 for x in lines)
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()

    other = tmp_path / "again"
    train(_cfg(face_cache, other, 2), other, progress=False)
    again = [json.loads(x) for x in (other / "metrics.jsonl").read_text().splitlines()]
    assert [x["train_loss"] for x in again] == pytest.approx([x["train_loss"] for x in lines], rel=1e-4)

    models = tmp_path / "models"
    onnx_path = export_onnx(run / "last.pt", models, version="test")
    assert onnx_path.stat().st_size < 25e6
    det = load_sbi_detector(models)
    assert det is not None and det.info.input_size == 64
    crops = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3)).astype(np.uint8)
    p = det.probabilities(crops)
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all()

    # Mirror averaging: the logit of a crop is the mean of the crop's and its mirror image's.
    flipped = tmp_path / "models_flip"
    export_onnx(run / "last.pt", flipped, version="flip", extra={"flip_average": True})
    det2 = load_sbi_detector(flipped)
    assert det2 is not None and det2.meta.flip_average
    plain = det.logits(np.concatenate([crops, crops[:, :, ::-1]]))
    assert np.allclose(det2.logits(crops), (plain[:3] + plain[3:]) / 2, atol=1e-5)


def test_fine_tuning_starts_from_the_given_weights(face_cache: Path, tmp_path: Path) -> None:
    from deepshield.detect.training.train import train

    base = tmp_path / "base"
    train(_cfg(face_cache, base, 1), base, progress=False)
    cfg = _cfg(face_cache, tmp_path / "ft", 1)
    cfg["train"]["init_from"] = str(base / "last.pt")
    cfg["train"]["lr"] = 1e-12  # no learning: the fine-tuned model is the starting one
    cfg["sbi"]["cross_prob"] = 0.5
    train(cfg, tmp_path / "ft", progress=False)
    a = torch.load(base / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "ft" / "last.pt", weights_only=False)["model"]
    conv = next(k for k in a if k.endswith("conv1.weight"))
    assert torch.allclose(a[conv], b[conv], atol=1e-6)


def test_platt_fit_recovers_a_known_calibration() -> None:
    from deepshield.detect.training.export import fit_platt

    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, 20000)
    p = 1 / (1 + np.exp(-(0.5 * x - 1.0)))
    y = (rng.random(20000) < p).astype(int)
    a, b = fit_platt(x, y)
    # Class balancing shifts the intercept by the log prior ratio; the slope is unchanged.
    prior = np.log(y.mean() / (1 - y.mean()))
    assert a == pytest.approx(0.5, abs=0.05)
    assert b + prior == pytest.approx(-1.0, abs=0.1)


def test_shipped_onnx_weights_rebuild_a_trainable_model(face_cache: Path, tmp_path: Path) -> None:
    """Fine-tuning can start from an exported ONNX file: the rebuilt network reproduces it exactly, and while
    only the fresh auxiliary head learns, the backbone's weights stay as shipped."""
    from deepshield.detect.training.export import export_onnx
    from deepshield.detect.training.onnx_import import check_against_onnx, model_from_onnx
    from deepshield.detect.training.train import train
    from deepshield.errors import DeepshieldError

    base = tmp_path / "base"
    cfg = _cfg(face_cache, base, 1)
    train(cfg, base, progress=False)
    onnx_path = export_onnx(base / "last.pt", tmp_path / "models", version="t")
    rng = np.random.default_rng(1)
    calib = rng.integers(0, 255, (8, 64, 64, 3)).astype(np.uint8)
    model = model_from_onnx(onnx_path, cfg["model"], calib)
    crops = rng.integers(0, 255, (5, 64, 64, 3)).astype(np.uint8)
    assert check_against_onnx(model, onnx_path, crops) < 1e-4
    with pytest.raises(DeepshieldError, match="convolutions"):
        model_from_onnx(onnx_path, {**cfg["model"], "blocks": [2, 1, 1, 1]}, calib)

    ft = _cfg(face_cache, tmp_path / "ft", 1)
    ft["train"]["init_from"] = str(onnx_path)
    ft["train"]["aux_warmup_steps"] = 10_000  # the whole run: backbone frozen
    train(ft, tmp_path / "ft", progress=False)
    got = torch.load(tmp_path / "ft" / "last.pt", weights_only=False)["model"]
    want = model.state_dict()
    assert torch.equal(got["stem.0.weight"], want["stem.0.weight"])
    assert torch.equal(got["head.weight"], want["head.weight"])

    ft["train"]["aux_warmup_steps"] = 0  # the same run without the warm-up moves the backbone
    train(ft, tmp_path / "ft2", progress=False)
    moved = torch.load(tmp_path / "ft2" / "last.pt", weights_only=False)["model"]
    assert not torch.equal(moved["stem.0.weight"], want["stem.0.weight"])


def test_shipped_mobilenet_rebuilds_a_trainable_model() -> None:
    """The shipped version 5 file (a MobileNetV2) rebuilds the training network, auxiliary head included, whose
    eval-mode logits are onnxruntime's; a config naming the compact network is refused, not half-loaded."""
    from deepshield.detect.training.mobilenet import ForgeryMobileNet
    from deepshield.detect.training.onnx_import import check_against_onnx, model_from_onnx
    from deepshield.errors import DeepshieldError

    path = Path(__file__).resolve().parents[2] / "src" / "deepshield" / "models" / "sbi_small.onnx"
    if not path.is_file():
        pytest.skip("no frame detector shipped in src/deepshield/models")
    rng = np.random.default_rng(2)
    calib = rng.integers(0, 255, (8, 160, 160, 3)).astype(np.uint8)
    model = model_from_onnx(path, {"arch": "mobilenet_v2", "pretrained": "imagenet"}, calib)
    assert isinstance(model, ForgeryMobileNet)
    assert check_against_onnx(model, path, rng.integers(0, 255, (4, 160, 160, 3)).astype(np.uint8)) < 1e-4
    model.train()
    logit, aux = model.forward_with_aux(torch.zeros(2, 3, 160, 160))
    assert logit.shape == (2,) and aux.shape[:2] == (2, 2)
    with pytest.raises(DeepshieldError, match="convolutions"):
        model_from_onnx(path, {"arch": "compact"}, calib)


def test_weight_averaging_takes_the_mean_and_remeasures_batchnorm(face_cache: Path, tmp_path: Path) -> None:
    from deepshield.detect.training.export import export_onnx
    from deepshield.detect.training.swa import average_checkpoints
    from deepshield.detect.training.train import train
    from deepshield.errors import DeepshieldError

    run = tmp_path / "run"
    train(_cfg(face_cache, run, 2), run, progress=False)
    paths = [run / "epoch001.pt", run / "epoch002.pt"]
    a, b = (torch.load(p, weights_only=False)["model"] for p in paths)
    info = average_checkpoints(paths, tmp_path / "swa.pt", bn_batches=3)
    assert info["checkpoints"] == 2 and 1 <= info["bn_batches"] <= 3
    got = torch.load(tmp_path / "swa.pt", weights_only=False)["model"]
    assert torch.allclose(got["stem.0.weight"], (a["stem.0.weight"] + b["stem.0.weight"]) / 2)
    stat = "stem.1.running_mean"
    assert not torch.allclose(got[stat], a[stat]) and not torch.allclose(got[stat], b[stat])
    assert export_onnx(tmp_path / "swa.pt", tmp_path / "models", version="swa").is_file()
    with pytest.raises(DeepshieldError, match="no checkpoint"):
        average_checkpoints([run / "epoch009.pt"], tmp_path / "x.pt")


def test_platt_fit_converges_on_large_saturating_logits() -> None:
    """Logits of a confident network (fakes up to +19) made plain Newton from (1, 0) diverge to a ~ 1e9."""
    from deepshield.detect.training.export import fit_platt

    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(0, 1.5, 150), rng.normal(7, 4, 150)]
    y = np.r_[np.zeros(150), np.ones(150)]
    a, b = fit_platt(x, y)
    assert 0.05 < a < 5 and abs(b) < 20
    p = 1 / (1 + np.exp(-(a * x + b)))
    assert p[y == 1].mean() > 0.7 and p[y == 0].mean() < 0.3


def test_learning_rate_holds_for_the_auxiliary_head_warms_up_then_decays_over_the_rest() -> None:
    """The cosine starts where the warm-up ends, at the full rate, also when a fresh auxiliary head trained first."""
    from deepshield.detect.training.train import lr_factor

    aux, warm, total = 100, 50, 1000
    assert lr_factor(0, aux, warm, total) == 1.0 and lr_factor(aux - 1, aux, warm, total) == 1.0
    assert lr_factor(aux, aux, warm, total) == pytest.approx(1 / warm)
    assert lr_factor(aux + warm, aux, warm, total) == pytest.approx(1.0)
    middle = aux + warm + (total - aux - warm) // 2
    assert lr_factor(middle, aux, warm, total) == pytest.approx(0.51, abs=0.01)
    assert lr_factor(total, aux, warm, total) == pytest.approx(0.02)
    # A wall-clock budget that is spent ends the cosine early.
    assert lr_factor(aux + warm, aux, warm, total, budget_used=1.0) == pytest.approx(0.02)


def test_a_deepened_network_computes_the_same_function_and_training_can_grow_from_a_checkpoint(
    face_cache: Path, tmp_path: Path
) -> None:
    from deepshield.detect.training.checkpoint import load_checkpoint
    from deepshield.detect.training.model import CompactNet, deepen
    from deepshield.detect.training.train import train
    from deepshield.errors import DeepshieldError

    torch.manual_seed(0)
    small = CompactNet(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem=8)
    for m in small.modules():  # non-trivial BatchNorms, or identity blocks would hide a wrong copy
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    small.eval()
    big = deepen(small, into=CompactNet(widths=(8, 8, 16, 16), blocks=(2, 1, 3, 2), stem=8)).eval()
    stages = [s for s in big.stages if isinstance(s, torch.nn.Sequential)]
    assert [len(s) for s in stages] == [2, 1, 3, 2]
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(big(x), small(x), atol=1e-5)
        stages[2][2].bn2.weight.fill_(1.0)  # once the new block learns, the function changes
        assert not torch.allclose(big(x), small(x), atol=1e-3)
    with pytest.raises(ValueError, match="cannot deepen"):
        deepen(big, into=CompactNet(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), stem=8))

    base = tmp_path / "base"
    train(_cfg(face_cache, base, 1), base, progress=False)
    cfg = _cfg(face_cache, tmp_path / "grown", 1)
    cfg["model"]["blocks"] = [1, 2, 1, 2]
    cfg["train"].update(init_from=str(base / "last.pt"), init_blocks=[1, 1, 1, 1], lr=1e-12)
    train(cfg, tmp_path / "grown", progress=False)
    a = load_checkpoint(base / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "grown" / "last.pt")["model"]
    assert "stages.1.1.conv1.weight" in b and "stages.1.1.conv1.weight" not in a
    assert torch.allclose(a["stages.1.0.conv1.weight"], b["stages.1.0.conv1.weight"], atol=1e-6)
    cfg["train"]["init_blocks"] = [1, 3, 1, 1]  # blocks that do not describe the checkpoint: a clear error
    with pytest.raises(DeepshieldError, match="init_blocks"):
        train(cfg, tmp_path / "bad", progress=False)


class _RunsCode:
    """A pickle payload: unpickling it with weights_only=False would call `touch` on the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_bad_checkpoints_are_clear_errors_and_never_run_code(tmp_path: Path) -> None:
    import pickle

    from deepshield.detect.training.checkpoint import load_checkpoint
    from deepshield.errors import DeepshieldError

    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.ones(2)}, "config": {"model": {}}, "epoch": 3}, good)
    assert load_checkpoint(good)["epoch"] == 3
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.pt"
    torch.save({"model": _RunsCode(marker), "config": {}}, hostile, pickle_module=pickle)
    cases = {
        "missing.pt": "no checkpoint",
        "junk.pt": r"not a Deepshield checkpoint \(not a torch archive\)",
        "truncated.pt": r"not a Deepshield checkpoint \(not a torch archive\)",
        "list.pt": "not a Deepshield checkpoint",
        "nocfg.pt": "lacks config",
        "hostile.pt": "not a readable Deepshield checkpoint",
    }
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint\n" * 50)
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[:200])
    torch.save([1, 2], tmp_path / "list.pt")
    torch.save({"model": {}}, tmp_path / "nocfg.pt")
    for name, message in cases.items():
        with pytest.raises(DeepshieldError, match=message):
            load_checkpoint(tmp_path / name)
    assert not marker.exists(), "loading a checkpoint ran code from it"
    # Through the CLI: a one-line error and exit code 2, no traceback, nothing written.
    out = tmp_path / "models"
    res = run_cli("export", "--checkpoint", str(hostile), "--out", str(out), timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "not a readable" in res.stderr
    assert not marker.exists() and not out.exists()
