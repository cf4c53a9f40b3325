"""ONNX export of a temporal checkpoint, with the metadata scoring needs and a threshold set on real clips of
validation identities.

The file must stay small (the brief: under 5 MB) and must compute what torch computes: both are checked here, so
a model that fails either is never written out as if it were fine.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from deepshield.errors import DeepshieldError

MODEL_NAME = "temporal"
MAX_BYTES = 5_000_000
#: Largest |torch - onnxruntime| logit difference accepted on random input.
MAX_DIFF = 1e-3


def onnx_difference(model: Any, onnx_path: Path, x: np.ndarray) -> float:
    """Largest difference between the torch model's logits (eval mode) and onnxruntime's for input `x`."""
    import onnxruntime as ort
    import torch

    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy().reshape(-1)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(-1)
    return float(np.abs(ref - got).max())


def real_threshold(real_probs: np.ndarray, quantile: float = 0.99) -> float:
    """The default threshold: at least 0.5, and above `quantile` of real validation clips' probabilities."""
    if len(real_probs) == 0:
        return 0.5
    return round(max(0.5, float(np.quantile(real_probs, quantile))), 4)


def export_onnx(checkpoint: Path, out_dir: Path, version: str, real_probs: np.ndarray | None = None) -> Path:
    """Write `<out_dir>/temporal.onnx` and `temporal.json`; `real_probs` (probabilities of real validation clips,
    scored as `TemporalDetector` scores them) set the default threshold."""
    import torch

    from deepshield.detect.training.checkpoint import load_checkpoint
    from deepshield.detect.training.temporal.model import TemporalNet
    from deepshield.detect.training.temporal.train import settings_from

    ck = load_checkpoint(checkpoint)
    net_cfg, synth = settings_from(ck["config"])
    model = TemporalNet(net_cfg)
    model.load_state_dict(ck["model"])
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{MODEL_NAME}.onnx"
    dummy = torch.zeros(1, 3, net_cfg.frames, net_cfg.size, net_cfg.size)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but needs no onnxscript
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(onnx_path),
            input_names=["clips"],
            output_names=["logit"],
            dynamic_axes={"clips": {0: "batch"}, "logit": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    size = onnx_path.stat().st_size
    x = np.random.default_rng(0).standard_normal((3, 3, net_cfg.frames, net_cfg.size, net_cfg.size), np.float32)
    diff = onnx_difference(model, onnx_path, x)
    if size > MAX_BYTES or diff > MAX_DIFF:
        onnx_path.unlink()
        raise DeepshieldError(f"export refused: {size / 1e6:.2f} MB (limit 5), ONNX - torch difference {diff:.2e}")
    from deepshield.detect.training.sbi import MEAN, STD

    meta: dict[str, Any] = {
        "name": MODEL_NAME,
        "version": version,
        "frames": net_cfg.frames,
        "input_size": net_cfg.size,
        "margin": round(synth.margin, 4),
        "mean": MEAN.tolist(),
        "std": STD.tolist(),
        "threshold": real_threshold(real_probs) if real_probs is not None else 0.5,
        "step": int(ck.get("step", -1)),
        "val_auc": float(ck.get("val_auc", float("nan"))),
        "onnx_torch_max_diff": diff,
        "config": ck["config"],
    }
    (out_dir / f"{MODEL_NAME}.json").write_text(json.dumps(meta, indent=1))
    return onnx_path


def val_real_probs(model_dir: Path, cache_dir: Path) -> np.ndarray:
    """Probabilities of every non-overlapping run of K frames of the validation identities' real videos, scored
    by the exported model exactly as videos are scored: the sample the default threshold is set on."""
    from deepshield.detect.training.temporal.clips import load_clip_cache
    from deepshield.detect.training.temporal.detector import TemporalDetector

    det = TemporalDetector(model_dir)
    clips = []
    for v in load_clip_cache(cache_dir, ["val"]):
        starts = v.starts(det.frames)
        taken = -det.frames
        for s in starts:
            if s >= taken + det.frames:
                clips.append(v.images[s : s + det.frames])
                taken = int(s)
    return det.clip_scores(clips) if clips else np.zeros(0)
