"""Export a training checkpoint to ONNX with its metadata, and fit the output calibration.

Calibration is Platt scaling (p = sigmoid(a * logit + b)) fitted on frame-level logits of validation
identities (real faces against face swaps), with the two classes weighted equally; the default threshold
is set so that at most `target_fpr` of validation real frames reach it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from deepshield.detect.onnx_detector import MODEL_NAME
from deepshield.detect.training.sbi import MEAN, STD
from deepshield.errors import DeepshieldError
from deepshield.textfiles import read_json_file


def export_onnx(checkpoint: Path, out_dir: Path, version: str, extra: dict[str, Any] | None = None) -> Path:
    """Write `<out_dir>/sbi_small.onnx` and `.json` (identity calibration until `calibrate` runs)."""
    import torch

    from deepshield.detect.training.checkpoint import load_checkpoint
    from deepshield.detect.training.model import build_model

    ck = load_checkpoint(checkpoint)
    cfg = ck["config"]
    model = build_model(cfg["model"], start=False)
    model.load_state_dict(ck["model"])
    model.eval()
    size = int(cfg["sbi"].get("input_size", 160))
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{MODEL_NAME}.onnx"
    dummy = torch.zeros(1, 3, size, size)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(onnx_path),
            input_names=["input"],
            output_names=["logit"],
            dynamic_axes={"input": {0: "batch"}, "logit": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    margin = (float(cfg["sbi"].get("margin_min", 0.12)) + float(cfg["sbi"].get("margin_max", 0.38))) / 2
    meta: dict[str, Any] = {
        "name": MODEL_NAME,
        "version": version,
        "input_size": size,
        "margin": round(margin, 3),
        "mean": MEAN.tolist(),
        "std": STD.tolist(),
        "calibration": {"a": 1.0, "b": 0.0, "method": "none"},
        "threshold": 0.5,
        "epoch": int(ck.get("epoch", -1)) + 1,
        "config": cfg,
        **(extra or {}),
    }
    meta_path = out_dir / f"{MODEL_NAME}.json"
    old = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if old.get("version") == version and "calibration" in old:
        meta["calibration"], meta["threshold"] = old["calibration"], old["threshold"]
    meta_path.write_text(json.dumps(meta, indent=1))
    # Sanity: onnxruntime reproduces torch on a random batch.
    from deepshield.detect.training.onnx_import import onnx_logit_difference

    diff = onnx_logit_difference(model, onnx_path, torch.randn(4, 3, size, size).numpy())
    if diff > 1e-3:
        raise DeepshieldError(f"ONNX output differs from torch (max {diff:.2e})")
    return onnx_path


def fit_platt(logits: np.ndarray, labels: np.ndarray, iters: int = 100) -> tuple[float, float]:
    """Class-balanced logistic regression of labels on logits: Newton's method with a backtracking line search
    on standardised logits (plain Newton from a = 1, b = 0 diverges when the logits are large and saturate)."""
    x = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.float64)
    npos, nneg = y.sum(), (1 - y).sum()
    if npos == 0 or nneg == 0:
        raise DeepshieldError("calibration needs both real and fake scores")
    w = np.where(y == 1, 0.5 / npos, 0.5 / nneg)
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    z = (x - mu) / sd

    def loss(t: np.ndarray) -> float:
        u = t[0] * z + t[1]
        return float(np.sum(w * (np.logaddexp(0, u) - y * u)))

    t = np.zeros(2)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(t[0] * z + t[1], -40, 40)))
        g = np.array([np.sum(w * (p - y) * z), np.sum(w * (p - y))])
        r = w * p * (1 - p)
        h = np.array([[np.sum(r * z * z), np.sum(r * z)], [np.sum(r * z), np.sum(r)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        f0, k = loss(t), 1.0
        while k > 1e-6 and loss(t - k * step) > f0:
            k /= 2
        t = t - k * step
        if np.abs(k * step).max() < 1e-10:
            break
    a = t[0] / sd
    return float(a), float(t[1] - a * mu)


def _real_photo_logits(files: list[Path]) -> list[float]:
    """The highest frame logit of each real still photo in `evaluate` JSONs (one frame per photo)."""
    out = []
    for path in files:
        data = read_json_file(path, "evaluation scores")
        try:
            for item in data["items"]:
                if int(item["label"]) == 0 and item.get("kind") == "image" and item["frames"]:
                    out.append(max(float(fr["logit"]) for fr in item["frames"]))
        except (KeyError, TypeError, ValueError):
            raise DeepshieldError(f"{path}: not a scores.json written by `deepshield evaluate`") from None
    if len(out) < 20:
        raise DeepshieldError(f"{len(out)} real photos in {', '.join(map(str, files))}: a photo threshold needs 20+")
    return out


def calibrate_from_scores(
    scores_json: Path | list[Path],
    out_dir: Path,
    target_fpr: float = 0.02,
    min_threshold: float = 0.5,
    photo_scores: list[Path] | None = None,
    photo_fpr: float = 0.03,
) -> dict[str, Any]:
    """Fit calibration from `evaluate` JSONs over validation data (pooled) and write it into the model metadata.
    With `photo_scores`, also a threshold for still photos: the (1 - photo_fpr) quantile of their real photos
    under the new calibration, never below the general threshold."""
    from deepshield.detect.onnx_detector import calibrate

    files = scores_json if isinstance(scores_json, list) else [scores_json]
    logits: list[float] = []
    labels: list[int] = []
    for path in files:
        data = read_json_file(path, "evaluation scores")
        try:
            for item in data["items"]:
                item_logits = [float(fr["logit"]) for fr in item["frames"]]
                label = int(item["label"])
                if label not in (0, 1):
                    raise ValueError(label)
                logits += item_logits
                labels += [label] * len(item_logits)
        except (KeyError, TypeError, ValueError):
            raise DeepshieldError(
                f"{path}: not a scores.json written by `deepshield evaluate` (items with label and frames)"
            ) from None
    if not logits:
        raise DeepshieldError(f"{', '.join(map(str, files))}: no scored frames to calibrate on")
    lg, lb = np.array(logits), np.array(labels)
    if lb.min() == lb.max():
        kind = "only reals" if lb[0] == 0 else "only fakes"
        raise DeepshieldError(f"{', '.join(map(str, files))}: {kind}; calibration needs real and fake frames")
    a, b = fit_platt(lg, lb)
    real_p = calibrate(lg[lb == 0], a, b)
    thr = float(max(min_threshold, np.quantile(real_p, 1 - target_fpr)))
    meta_path = out_dir / f"{MODEL_NAME}.json"
    if not meta_path.is_file():
        raise DeepshieldError(f"no model metadata at {meta_path}: export first")
    meta = json.loads(meta_path.read_text())
    meta["calibration"] = {
        "a": a,
        "b": b,
        "method": "platt, class-balanced, frame-level",
        "fitted_on": ", ".join(f"{p.parent.name}/{p.name}" for p in files),
        "n_frames": int(len(lg)),
        "n_real_frames": int((lb == 0).sum()),
    }
    meta["threshold"] = round(thr, 4)
    meta["threshold_rule"] = f"max({min_threshold}, {1 - target_fpr:.2f} quantile of validation real frames)"
    meta.pop("photo_threshold", None)
    meta.pop("photo_threshold_rule", None)
    if photo_scores:
        photo_p = calibrate(np.array(_real_photo_logits(photo_scores)), a, b)
        meta["photo_threshold"] = round(float(max(thr, np.quantile(photo_p, 1 - photo_fpr))), 4)
        meta["photo_threshold_rule"] = (
            f"max(threshold, {1 - photo_fpr:.2f} quantile of {len(photo_p)} validation real photos: "
            + ", ".join(f"{p.parent.name}/{p.name}" for p in photo_scores)
            + ")"
        )
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta
