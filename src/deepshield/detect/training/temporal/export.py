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

from deepshield.detect.temporal import MODEL_NAME
from deepshield.errors import DeepshieldError

MAX_BYTES = 5_000_000
#: The pretrained-feature model carries a frozen MobileNetV2: the shipping limit of every model file.
MAX_BYTES_FEATURES = 25_000_000
#: Largest |torch - onnxruntime| logit difference accepted on random input.
MAX_DIFF = 1e-3


def real_threshold(real_probs: np.ndarray, quantile: float = 0.99) -> float:
    """The default threshold: at least 0.5, and above `quantile` of real validation clips' probabilities."""
    if len(real_probs) == 0:
        return 0.5
    return round(max(0.5, float(np.quantile(real_probs, quantile))), 4)


def to_onnx(model: Any, dummy: Any, path: Path, names: tuple[str, str], in_axes: dict[int, str]) -> None:
    """torch.onnx.export with one input and one output, batch-dynamic (TorchScript exporter, opset 17)."""
    import torch

    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but needs no onnxscript
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_axes={names[0]: in_axes, names[1]: {0: in_axes[0]}},
            opset_version=17,
            dynamo=False,
        )


def write_onnx(model: Any, frames: int, size: int, out_dir: Path, max_bytes: int) -> tuple[Path, float]:
    """`<out_dir>/temporal.onnx` of a torch model taking B x 3 x K x S x S clips, checked for size and against
    torch; returns its path and the largest logit difference."""
    import torch

    from deepshield.detect.training.onnx_import import onnx_logit_difference

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{MODEL_NAME}.onnx"
    model.eval()
    to_onnx(model, torch.zeros(1, 3, frames, size, size), onnx_path, ("clips", "logit"), {0: "batch"})
    nbytes = onnx_path.stat().st_size
    x = np.random.default_rng(0).standard_normal((3, 3, frames, size, size), np.float32)
    diff = onnx_logit_difference(model, onnx_path, x)
    if nbytes > max_bytes or diff > MAX_DIFF:
        onnx_path.unlink()
        raise DeepshieldError(
            f"export refused: {nbytes / 1e6:.2f} MB (limit {max_bytes / 1e6:.0f}), ONNX - torch difference {diff:.2e}"
        )
    return onnx_path, diff


def write_meta(out_dir: Path, meta: dict[str, Any]) -> None:
    from deepshield.detect.training.sbi import MEAN, STD

    full = {"name": MODEL_NAME, "mean": MEAN.tolist(), "std": STD.tolist(), **meta}
    (out_dir / f"{MODEL_NAME}.json").write_text(json.dumps(full, indent=1))


def export_onnx(checkpoint: Path, out_dir: Path, version: str, real_probs: np.ndarray | None = None) -> Path:
    """Write `<out_dir>/temporal.onnx` and `temporal.json` of an FTCN-style checkpoint; `real_probs`
    (probabilities of real validation clips, scored as `TemporalDetector` scores them) set the default threshold."""
    from deepshield.detect.training.checkpoint import load_checkpoint
    from deepshield.detect.training.temporal.model import TemporalNet
    from deepshield.detect.training.temporal.train import settings_from

    ck = load_checkpoint(checkpoint)
    net_cfg, synth = settings_from(ck["config"])
    model = TemporalNet(net_cfg)
    model.load_state_dict(ck["model"])
    onnx_path, diff = write_onnx(model, net_cfg.frames, net_cfg.size, out_dir, MAX_BYTES)
    meta: dict[str, Any] = {
        "method": "ftcn",
        "version": version,
        "frames": net_cfg.frames,
        "input_size": net_cfg.size,
        "margin": round(synth.margin, 4),
        "threshold": real_threshold(real_probs) if real_probs is not None else 0.5,
        "step": int(ck.get("step", -1)),
        "val_auc": float(ck.get("val_auc", float("nan"))),
        "onnx_torch_max_diff": diff,
        "config": ck["config"],
    }
    write_meta(out_dir, meta)
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
