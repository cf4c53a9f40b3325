"""Weight averaging over the last epochs of a run (Izmailov et al., "Averaging Weights Leads to Wider Optima and
Better Generalization", UAI 2018), written from the paper.

Per-epoch checkpoints near the end of a cosine schedule sit around one minimum; their mean usually generalises
better than any one of them, at no cost at inference. The BatchNorm statistics of an averaged network are not
the average of the statistics, so they are measured again on training pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepshield.detect.training.checkpoint import load_checkpoint
from deepshield.detect.training.facecache import load_cache
from deepshield.detect.training.model import build_model
from deepshield.errors import DeepshieldError


def average_checkpoints(paths: Sequence[Path], out: Path, bn_batches: int = 100, seed: int = 0) -> dict[str, Any]:
    """Write the mean of `paths`' weights to `out` (a checkpoint `export` reads), with BatchNorm statistics
    re-measured over `bn_batches` batches of training pairs drawn as in training."""
    from deepshield.detect.training.train import SelfBlendDataset, collate_pairs, face_cache_of, sbi_params

    if not paths:
        raise DeepshieldError("no checkpoints to average")
    cks = [load_checkpoint(p) for p in paths]
    cfg = cks[-1]["config"]
    model = build_model(cfg["model"], start=False)
    state = model.state_dict()
    mean: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if v.is_floating_point():
            mean[k] = torch.stack([c["model"][k].float() for c in cks]).mean(dim=0)
        else:
            mean[k] = cks[-1]["model"][k]
    model.load_state_dict(mean)

    faces = load_cache(face_cache_of(cfg), ["train"], max_per_source=cfg.get("data", {}).get("max_frames_per_video"))
    ds = SelfBlendDataset(faces, sbi_params(cfg), seed=seed)
    ds.epoch = 20_000  # pairs the run never drew
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative mean over every batch below
    g = torch.Generator()
    g.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=int(cfg["train"].get("batch_pairs", 16)), shuffle=True, generator=g, collate_fn=collate_pairs
    )
    model.train()
    with torch.no_grad():
        for i, (x, _, _) in enumerate(loader):
            if i >= bn_batches:
                break
            model(x)
    model.eval()
    rec = {
        "model": model.state_dict(),
        "config": cfg,
        "epoch": int(cks[-1].get("epoch", -1)),
        "averaged": [str(p) for p in paths],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(rec, out)
    return {"checkpoints": len(paths), "bn_batches": min(bn_batches, len(loader)), "out": str(out)}
